using NUnit.Framework;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Segmentation;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

/// <summary>
/// schedule.max_epochs on real (generated demo ADE) data through the real loader: 8 training images in batches of 4 are
/// 2 iterations an epoch, so 2 epochs evaluate and checkpoint at iterations 2 and 4, and the optimiser's lr drops at
/// iteration 2, the lr `vim config lr` previews for the same config.
/// </summary>
public class EpochTrainingTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-epochtrain-").FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 8, ValImages = 2, Width = 64, Height = 64, Seed = 5,
        });
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    [Test]
    public void TwoEpochsOfTheDemoDataEvaluateAndCheckpointAtEpochEndsWithThePreviewedLr()
    {
        set_num_threads(1);
        var config = SegmentationTaskTests.ConfigAt(_root);
        config.Data.BatchSize = 4;
        config.Schedule = new ScheduleConfig { MaxEpochs = 2, Policy = LrPolicy.Multistep, Milestones = [1], Gamma = 0.1, WarmupIters = 0 };
        config.Train = new TrainConfig { EvalInterval = 1, CheckpointInterval = 1, LogInterval = 1, KeepLast = 3 };
        var workDir = Path.Combine(_root, "work");

        // What `vim config lr` previews: the same resolution (the training loader's epoch, one process) and lr formula.
        var length = TrainingEpochs.Resolve(config, processes: 1);
        Assert.That((length.IterationsPerEpoch, length.MaxIters), Is.EqualTo((2, 4)), "8 images / batch 4 = 2 iterations an epoch");

        var applied = new List<(int Iteration, IReadOnlyList<double> Lrs)>();
        LrPreview preview;
        TrainingResult result;
        using (var task = new SegmentationTask(config, TextWriter.Null, SegmentationTaskTests.TinyModel))
        {
            preview = new LrPreview(length.Config, ParameterGroupRules.Build(task.Model, config.Optimizer, task.NumBackboneLayers), processes: 1,
                iterationsPerEpoch: length.IterationsPerEpoch);
            result = new Trainer<Batch>(task, config, workDir, "cfg", TextWriter.Null)
            {
                AfterOptimizerStep = (iteration, optimizer) => applied.Add((iteration, optimizer.GroupLrs.ToList())),
            }.Run(null);
        }

        Assert.That(result.Iteration, Is.EqualTo(4));
        var log = JsonLinesLog.Read(Path.Combine(workDir, "log.jsonl"));
        var evaluations = log.Where(r => r.Text("mode") == TrainingLogModes.Evaluation).ToList();
        Assert.That(evaluations.Select(r => (r.Iteration, r.Number("epoch"))), Is.EqualTo(new[] { (2, 1.0), (4, 2.0) }));
        Assert.That(evaluations.All(r => r.Has("mIoU")));
        Assert.That(new CheckpointDirectory(workDir, 3).Periodic().Select(Path.GetFileName),
            Is.EqualTo(new[] { "iter_0000004.safetensors", "iter_0000002.safetensors" }));

        Assert.That(applied.Select(a => a.Iteration), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        foreach (var (iteration, lrs) in applied)
        {
            Assert.That(lrs, Is.EqualTo(preview.Groups.Select(g => preview.LrAt(g, iteration))), $"iteration {iteration}: the previewed lrs");
            // optimizer.lr 1e-3 times each group's scale, × 0.1 from the milestone's iteration 2 (epoch 1 × 2).
            Assert.That(lrs, Is.EqualTo(preview.Groups.Select(g => 1e-3 * g.LrScale * (iteration < 2 ? 1 : 0.1))).Within(1e-18), $"iteration {iteration}");
        }
        Assert.That(preview.Table(preview.Groups), Does.Contain("schedule.max_epochs 2 × 2 iterations per epoch (the training loader's): epoch e (from 0) starts at iteration e × 2"));
    }
}
