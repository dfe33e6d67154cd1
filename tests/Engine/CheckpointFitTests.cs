using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// A training checkpoint given to a model it was not trained for (another task, backbone or class count): `vim test`,
/// `vim infer` and `--resume` refuse it in one paragraph that counts what fits, shows a few keys of each kind and says
/// what the checkpoint was trained with, and copy nothing.
/// </summary>
public class CheckpointFitTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-fit-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>A stand-in with the top-level layout of a task model: a shared backbone and a task head.</summary>
    private sealed class TwoPart : nn.Module
    {
        private readonly nn.Module backbone;
        private readonly nn.Module head;

        public TwoPart(string headName, long headOutputs) : base("two_part")
        {
            backbone = nn.Linear(4, 4);
            head = nn.Linear(4, headOutputs);
            register_module("backbone", backbone);
            register_module(headName, head);
        }
    }

    private string Save(nn.Module model, TaskKind task, string backbone, int classes)
    {
        var config = new ExperimentConfig { Task = task, Model = new ModelConfig { NumClasses = classes } };
        config.Model.Backbone.Name = backbone;
        var yaml = ConfigWriter.ToYaml(ConfigBinder.ToNode(config));
        var optimizer = new AdamWOptimizer([new ParameterGroup("all", model.named_parameters().ToList(), 0.0, 1.0)]);
        var path = Path.Combine(_root, $"{task}_{classes}.safetensors");
        TrainingCheckpoint.Save(path, model, optimizer, null, new TrainingState(3, 3, DataPosition.Start, null, yaml));
        return path;
    }

    [Test]
    public void ACheckpointOfTheOtherTaskIsRefusedInOneParagraphNamingWhatItWasTrainedWith()
    {
        using var scope = NewDisposeScope();
        var path = Save(new TwoPart("decode_head", 3), TaskKind.Segmentation, "vimseg_tiny", 150);
        var detector = new TwoPart("roi_heads", 6);
        var before = detector.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        var error = Assert.Throws<VimException>(() => TrainingCheckpoint.LoadWeights(detector, path, ema: false))!;
        Assert.That(error.Message, Does.StartWith(path + ":"));
        Assert.That(error.Message, Does.Contain("2 of the model's 4 tensors match"));
        Assert.That(error.Message, Does.Contain("2 missing in the checkpoint (e.g. roi_heads.weight, roi_heads.bias)"));
        Assert.That(error.Message, Does.Contain("2 not in the model (e.g. decode_head.weight, decode_head.bias)"));
        Assert.That(error.Message, Does.Contain("trained with task: segmentation, model.backbone.name: vimseg_tiny, model.num_classes: 150"));
        Assert.That(error.Message.Split('\n'), Has.Length.EqualTo(1), "one paragraph, not a key listing");
        foreach (var (name, value) in detector.state_dict())
            Assert.That(value.eq(before[name]).all().item<bool>(), Is.True, $"{name} untouched");

        // A resume is refused the same way, before the optimiser state is read.
        var optimizer = new AdamWOptimizer([new ParameterGroup("all", detector.named_parameters().ToList(), 0.0, 1.0)]);
        var resume = Assert.Throws<VimException>(() => TrainingCheckpoint.Load(path, detector, optimizer, null))!;
        Assert.That(resume.Message, Does.Contain("2 of the model's 4 tensors match").And.Contain("task: segmentation"));
    }

    /// <summary>A resume whose optimiser state does not fit (an AdamW run resumed with SGD: no momentum buffers; AdamW's
    /// per-parameter step counts) names the checkpoint file, as the model's misfit does, not only the state's key.</summary>
    [Test]
    public void AResumeWithAnotherOptimiserNamesTheCheckpointFile()
    {
        using var scope = NewDisposeScope();
        var model = new TwoPart("roi_heads", 6);
        var path = Save(model, TaskKind.Detection, "vim_tiny", 6);
        var sgd = new SgdOptimizer([new ParameterGroup("all", model.named_parameters().ToList(), 0.0, 1.0)], momentum: 0.9);
        var error = Assert.Throws<VimException>(() => TrainingCheckpoint.Load(path, model, sgd, null))!;
        Assert.That(error.Message, Does.StartWith(path + ": ").And.Contain("momentum_buffer/"));
    }

    /// <summary>
    /// A resume from a checkpoint of the other task that also kept EMA weights, into a run without EMA: the weights that do
    /// not fit are named, not the EMA setting (which a matching config would fix along with everything else).
    /// </summary>
    [Test]
    public void AResumeFromTheOtherTasksEmaCheckpointNamesTheWeightsNotTheEmaSetting()
    {
        using var scope = NewDisposeScope();
        var detector = new TwoPart("roi_heads", 6);
        var config = new ExperimentConfig { Task = TaskKind.Detection, Model = new ModelConfig { NumClasses = 5 } };
        config.Model.Backbone.Name = "vimdet_tiny";
        var path = Path.Combine(_root, "detection_ema.safetensors");
        using (var ema = new ExponentialMovingAverage(detector, 0.9))
            TrainingCheckpoint.Save(path, detector, new AdamWOptimizer([new ParameterGroup("all", detector.named_parameters().ToList(), 0.0, 1.0)]),
                ema, new TrainingState(3, 3, DataPosition.Start, null, ConfigWriter.ToYaml(ConfigBinder.ToNode(config))));

        var segmentor = new TwoPart("decode_head", 3);
        var optimizer = new AdamWOptimizer([new ParameterGroup("all", segmentor.named_parameters().ToList(), 0.0, 1.0)]);
        var error = Assert.Throws<VimException>(() => TrainingCheckpoint.Load(path, segmentor, optimizer, ema: null))!;
        Assert.That(error.Message, Does.Contain("2 of the model's 4 tensors match").And.Contain("task: detection"));
        Assert.That(error.Message, Does.Not.Contain("train.ema_momentum"));
    }

    [Test]
    public void AnotherClassCountShowsTheShapesOnBothSides()
    {
        using var scope = NewDisposeScope();
        var path = Save(new TwoPart("roi_heads", 6), TaskKind.Detection, "vimdet_tiny", 5);
        var error = Assert.Throws<VimException>(() => TrainingCheckpoint.LoadWeights(new TwoPart("roi_heads", 81), path, ema: false))!;
        Assert.That(error.Message, Does.Contain("2 of the model's 4 tensors match"));
        Assert.That(error.Message, Does.Contain("2 of another shape (e.g. roi_heads.weight: [6, 4] in the checkpoint, [81, 4] in the model, roi_heads.bias: [6] in the checkpoint, [81] in the model)"));
        Assert.That(error.Message, Does.Contain("model.num_classes: 5"));
        Assert.That(error.Message, Does.Not.Contain("missing"));
    }
    /// <summary>Asking for the EMA weights of a checkpoint trained without EMA says so in one line, not with its key listing.</summary>
    [Test]
    public void EmaWeightsOfACheckpointWithoutEmaAreRefusedInOneLine()
    {
        using var scope = NewDisposeScope();
        var model = new TwoPart("decode_head", 3);
        var path = Save(model, TaskKind.Segmentation, "vimseg_tiny", 150);
        var error = Assert.Throws<VimException>(() => TrainingCheckpoint.LoadWeights(model, path, ema: true))!;
        Assert.That(error.Message, Is.EqualTo($"{path}: holds no EMA weights (the run that wrote it had no train.ema_momentum); use its trained weights (without --ema)"));

        // A file without that metadata (not written by the trainer) names its entries, not every tensor.
        using (var file = Vim.Core.Checkpoints.CheckpointFile.Load(path))
        {
            var missing = Assert.Throws<VimException>(() => file.StateDict("ema"))!;
            Assert.That(missing.Message, Does.EndWith("(top-level keys: model, optim, rng)"));
        }
    }
    /// <summary>
    /// A folder given as the checkpoint (a work dir) is named as a folder with the checkpoints in it, by the reader and by
    /// `vim test` / `vim infer` before they read any data.
    /// </summary>
    [Test]
    public void AFolderGivenAsTheCheckpointListsTheCheckpointsInIt()
    {
        using var scope = NewDisposeScope();
        var model = new TwoPart("decode_head", 3);
        var work = Path.Combine(_root, "work");
        Directory.CreateDirectory(work);
        File.Move(Save(model, TaskKind.Segmentation, "vimseg_tiny", 150), Path.Combine(work, "iter_0000002.safetensors"));
        File.Copy(Path.Combine(work, "iter_0000002.safetensors"), Path.Combine(work, "best.safetensors"));
        File.WriteAllText(Path.Combine(work, "log.jsonl"), "");
        var expected = $"{work}: is a folder; expected a checkpoint file, e.g. {Path.Combine(work, "best.safetensors")} " +
            "(checkpoints there: best.safetensors, iter_0000002.safetensors)";
        Assert.That(Assert.Throws<VimException>(() => Vim.Core.Checkpoints.CheckpointFile.Load(work).Dispose())!.Message, Is.EqualTo(expected));

        var config = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var nowhere = Path.Combine(_root, "no-data");
        foreach (var verb in new[] { "test", "infer" })
        {
            var error = new StringWriter();
            string[] args = verb == "test"
                ? ["test", config, "--checkpoint", work, "--set", $"data.root={nowhere}"]
                : ["infer", config, "--checkpoint", work, config, "--set", $"data.root={nowhere}"];
            Assert.That(Vim.Tools.VimCli.Run(args, error), Is.EqualTo(1), verb);
            Assert.That(error.ToString().Trim(), Is.EqualTo($"error: {expected}"), verb);
        }
        var empty = Directory.CreateDirectory(Path.Combine(_root, "empty")).FullName;
        Assert.That(Assert.Throws<VimException>(() => Vim.Core.Checkpoints.CheckpointFile.Load(empty).Dispose())!.Message,
            Is.EqualTo($"{empty}: is a folder; expected a checkpoint file (it holds no .safetensors or .pth file)"));
    }
}
