using NUnit.Framework;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Tools.Commands;

namespace Vim.Tests.Segmentation;

/// <summary>
/// model.backbone.with_cp through `vim train`: the demo UperNet config (Vim-Ti's 24 blocks, mixer-output taps) trained
/// with and without it logs the same losses and saves the same weights, to the bit, with drop path drawing masks.
/// </summary>
public class ActivationCheckpointTrainingTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-withcp-").FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 4, ValImages = 1, Width = 64, Height = 64, Seed = 5,
        });
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    [Test]
    public void TheDemoConfigTrainsToTheSameLossesAndWeightsWithAndWithoutIt()
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        (double[] Losses, Dictionary<string, float[]> Weights) Train(bool withCp)
        {
            var config = ExperimentConfig.Load(configPath,
            [
                $"data.root={Path.Combine(_root, "ade")}", "data.crop_size=[32,32]", "data.scale=[64,64]", "data.batch_size=2", "data.num_workers=0",
                "model.backbone.drop_path_rate=0.3", "schedule.max_iters=2", "schedule.warmup_iters=1", "train.log_interval=1",
                "train.eval_interval=2", "train.checkpoint_interval=2", $"model.backbone.with_cp={(withCp ? "true" : "false")}",
            ]).Config;
            Assert.That(config.Model.Backbone.WithCp, Is.EqualTo(withCp));
            var dir = Path.Combine(_root, withCp ? "with_cp" : "plain");
            var result = TrainCommand.Train(config, dir, null, SingleProcessCommunicator.Instance, CancellationToken.None);
            Assert.That(result.Iteration, Is.EqualTo(2));
            var losses = JsonLinesLog.Read(Path.Combine(dir, "log.jsonl")).Where(r => r.Has("loss")).Select(r => r.Number("loss")).ToArray();
            using var checkpoint = CheckpointFile.Load(Path.Combine(dir, "iter_0000002.safetensors"));
            var weights = checkpoint.ModelStateDict().ToDictionary(e => e.Key, e => e.Value.to_type(TorchSharp.torch.ScalarType.Float32).data<float>().ToArray());
            return (losses, weights);
        }
        var plain = Train(withCp: false);
        var checkpointed = Train(withCp: true);
        Assert.That(plain.Losses, Has.Length.EqualTo(2), "one logged loss per iteration");
        Assert.That(checkpointed.Losses, Is.EqualTo(plain.Losses));
        Assert.That(checkpointed.Weights.Keys, Is.EquivalentTo(plain.Weights.Keys));
        Assert.That(plain.Weights.Keys.Count(k => k.Contains(".layers.23.", StringComparison.Ordinal)), Is.GreaterThan(0), "the backbone's blocks are compared");
        foreach (var (name, expected) in plain.Weights)
            Assert.That(checkpointed.Weights[name], Is.EqualTo(expected), name);
    }
}
