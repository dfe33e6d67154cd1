using NUnit.Framework;
using Vim.Core.Config;
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
}
