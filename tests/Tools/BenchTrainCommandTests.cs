using NUnit.Framework;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Tests.Segmentation;
using Vim.Tools.Commands;

namespace Vim.Tests.Tools;

/// <summary>`vim bench train` on the tiny segmentation model and generated ADE data.</summary>
[NonParallelizable] // captures Console.Out and switches FusedOptimizerStep.Enabled, both process-wide
public class BenchTrainCommandTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-benchtrain-").FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 8, ValImages = 4, Width = 64, Height = 64, Seed = 5,
        });
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// A step's time runs from one optimiser step's end to the next's, so an evaluation or a periodic checkpoint the
    /// config schedules between them would be timed as training: with evaluations and checkpoints every epoch (4
    /// iterations), the 5 steps of the benchmark (1 warm-up, 2 per path) must run none of them.
    /// </summary>
    [Test]
    public void TheTimedStepsRunNoEvaluationNorPeriodicCheckpoint()
    {
        var config = SegmentationTaskTests.ConfigAt(_root);
        // 8 training images in batches of 2: 4 iterations an epoch, 8 in the run.
        config.Schedule.MaxIters = null;
        config.Schedule.MaxEpochs = 2;
        config.Train.EvalInterval = 1;
        config.Train.CheckpointInterval = 1;
        config.Model.Backbone.Name = "vimseg_tiny";
        config.Model.Backbone.ImgSize = 64;
        config.Model.Backbone.DropPathRate = 0;
        var configPath = Path.Combine(_root, "bench.yaml");
        File.WriteAllText(configPath, ConfigWriter.ToYaml(ConfigBinder.ToNode(config)));

        var console = new StringWriter();
        var before = Console.Out;
        Console.SetOut(console);
        BenchTrainCommand.Report report;
        try
        {
            report = BenchTrainCommand.Run(configPath, [], new BenchTrainCommand.Settings(2, 1, BenchTrainCommand.ParsePaths("both")), TextWriter.Null);
        }
        finally
        {
            Console.SetOut(before);
        }
        var output = console.ToString();
        Assert.That(output, Does.Not.Contain("eval @"), output);
        Assert.That(output, Does.Contain("checkpoints every 8 iterations"), "periodic checkpoints at the run's end alone: " + output);
        Assert.That(report.Paths.Select(p => (p.Path, p.Steps)), Is.EqualTo(new[] { ("fused", 2), ("torchsharp", 2) }));
        Assert.That(report.StepSpeedup, Is.Not.Null);
    }

    /// <summary>
    /// `--backward-breakdown` through the whole command: each path's components name the backbone's mixer pieces, the neck
    /// and the decode head, and, since the recorded pass runs inside the trainer's backward stage (timed apart by the
    /// stage profiler), the components' summed wall time cannot exceed that stage's; the marks fire every step; the
    /// warm-up step's pass is not counted and the profiler is left off.
    /// </summary>
    [Test]
    public void BackwardBreakdownNamesTheComponentsInsideTheBackwardStage()
    {
        var config = SegmentationTaskTests.ConfigAt(_root);
        config.Model.Backbone.Name = "vimseg_tiny";
        config.Model.Backbone.ImgSize = 64;
        // Drop path on and two accumulated batches per optimiser step: two passes per step, summed.
        config.Model.Backbone.DropPathRate = 0.1;
        config.Train.AccumulateSteps = 2;
        var configPath = Path.Combine(_root, "bench.yaml");
        File.WriteAllText(configPath, ConfigWriter.ToYaml(ConfigBinder.ToNode(config)));

        var report = BenchTrainCommand.Run(configPath, [],
            new BenchTrainCommand.Settings(2, 1, BenchTrainCommand.ParsePaths("fused"), BackwardBreakdown: true), TextWriter.Null);

        Assert.That(BackwardProfiler.Enabled, Is.False, "the benchmark turns the profiler off again");
        Assert.That(report.MarkCostMicroseconds, Is.GreaterThan(0));
        var path = report.Paths.Single();
        var components = path.BackwardComponents!.Select(c => c.Component).ToList();
        Assert.That(components, Does.Contain("backbone/mixer"));
        Assert.That(components, Does.Contain("backbone/mixer/branch/scan"));
        Assert.That(components, Does.Contain("backbone/mixer/out_proj"));
        Assert.That(components, Does.Contain("backbone/neck"));
        Assert.That(components, Does.Contain(Vim.Segmentation.SegmentationStages.DecodeHead));
        Assert.That(components, Does.Contain(BackwardProfiler.Outside));
        double backwardStage = path.Stages.Single(s => s.Stage == TrainingStages.Backward).Milliseconds;
        double breakdown = path.BackwardComponents!.Sum(c => c.Milliseconds);
        Assert.That(breakdown, Is.GreaterThan(0).And.LessThanOrEqualTo(backwardStage),
            "the timed steps' passes, and no warm-up pass, lie inside their backward stages");
        Assert.That(path.BackwardMarks % path.Steps, Is.EqualTo(0), "the same marks fire every step");
        Assert.That(path.BackwardMarks, Is.GreaterThan(0));

        var printed = new StringWriter();
        BenchTrainCommand.PrintBackward(path, path.BackwardComponents!, report.MarkCostMicroseconds, printed);
        Assert.That(printed.ToString(), Does.Contain(FormattableString.Invariant($"{path.BackwardMarks / path.Steps} marks per step")));
    }
}
