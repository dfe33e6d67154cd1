using System.Globalization;
using NUnit.Framework;
using TorchSharp;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Data.Demo;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Data.Loading;
using Vim.Segmentation;
using Vim.Tests.Engine;
using Vim.Tests.Eval;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

/// <summary>Segmentation through the shared trainer on a tiny generated ADE-format dataset.</summary>
public class SegmentationTaskTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-segtask-").FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 8, ValImages = 4, Width = 64, Height = 64, Seed = 5,
        });
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private ExperimentConfig Config() => ConfigAt(_root);

    /// <summary>Segmentation on the demo ADE data generated under &lt;root&gt;/ade: 64² images, 32² sliding windows (shared with other tests of the tiny model).</summary>
    internal static ExperimentConfig ConfigAt(string root) => new()
    {
        Task = TaskKind.Segmentation,
        Data = new DataConfig { Type = "ade20k", Root = Path.Combine(root, "ade"), CropSize = [32, 32], Scale = [64, 64], BatchSize = 2, NumWorkers = 0 },
        Model = new ModelConfig
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count,
            SegHead = new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16, AverageOverNonIgnored = true },
            SegTest = new SegmentationTestConfig { Mode = "slide", CropSize = [32, 32], Stride = [24, 24] },
        },
        Optimizer = new OptimizerConfig { Lr = 1e-3 },
        Schedule = new ScheduleConfig { MaxIters = 6, WarmupIters = 2 },
        Train = new TrainConfig { EvalInterval = 6, CheckpointInterval = 6, LogInterval = 3 },
    };

    internal static EncoderDecoder TinyModel() => TinyModel(DemoDatasetGenerator.ClassNames.Count);

    internal static EncoderDecoder TinyModel(int numClasses) =>
        TinyModel(numClasses, new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16, AverageOverNonIgnored = true });

    /// <summary>The tiny model with <paramref name="heads"/>; its weights depend on the heads' sizes alone, not on their losses.</summary>
    internal static EncoderDecoder TinyModel(int numClasses, SegmentationHeadConfig heads)
    {
        var backbone = new VisionMamba(VimVariants.SegTiny with { EmbedDim = 32, Depth = 4, TapBlocks = [0, 1, 2, 3], ImageSize = 64, DropPathRate = 0 }, 1);
        torch.manual_seed(2);
        return new EncoderDecoder(new SegmentationPyramid(backbone), heads, numClasses);
    }

    /// <summary>
    /// schedule.max_epochs through the real loader: the 8 training images in batches of 4 are 2 iterations an epoch, so 2
    /// epochs evaluate and checkpoint at iterations 2 and 4, and the optimiser's lr drops at iteration 2, the lr `vim config lr`
    /// previews for the same config (the same resolution, <see cref="TrainingEpochs.Resolve"/>, and formula).
    /// </summary>
    [Test]
    public void TwoEpochsOfTheDemoDataEvaluateAndCheckpointAtEpochEndsWithThePreviewedLr()
    {
        set_num_threads(1);
        var config = Config();
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
        using (var task = new SegmentationTask(config, TextWriter.Null, TinyModel))
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

    [Test]
    public void TrainsEvaluatesAndTheSavedCheckpointReproducesTheMetric()
    {
        var config = Config();
        var workDir = Path.Combine(_root, "work");
        double trained;
        using (var task = new SegmentationTask(config, TextWriter.Null, TinyModel))
        {
            Assert.That(task.NumBackboneLayers, Is.EqualTo(4));
            var result = new Trainer<Batch>(task, config, workDir, "cfg", TextWriter.Null).Run(null);
            Assert.That(result.Iteration, Is.EqualTo(6));
            trained = result.BestMetric!.Value;
        }
        Assert.That(trained, Is.InRange(0.0, 100.0));

        using var fresh = new SegmentationTask(config, TextWriter.Null, TinyModel);
        using (var file = CheckpointFile.Load(Path.Combine(workDir, "best.safetensors")))
            StateDictLoader.Load(fresh.Model, file.StateDict("model"));
        var predictions = 0;
        var again = SegmentationTask.Metrics(fresh.EvaluateFull((_, prediction, h, w) =>
        {
            Assert.That(prediction, Has.Length.EqualTo(h * w));
            predictions++;
        }));
        Assert.That(predictions, Is.EqualTo(4));
        Assert.That(again["mIoU"], Is.EqualTo(trained), "evaluating the saved best checkpoint gives the number training logged");

        // `vim test` writes the confusion matrix of that same pass: its counts are those of the prediction PNGs it wrote
        // against the validation labels (ignored pixels left out), and summary.md links it.
        var testDir = Path.Combine(_root, "test");
        var tested = SegmentationTester.Run(fresh, Path.Combine(workDir, "best.safetensors"), testDir, overlays: 0, ema: false);
        Assert.That(SegmentationTask.Metrics(tested)["mIoU"], Is.EqualTo(trained));
        int classes = fresh.ClassNames.Count;
        var expected = new long[classes, classes];
        for (int index = 0; index < fresh.ValSet.Count; index++)
        {
            var (labels, _, _) = fresh.ValSet.LoadLabelMap(index);
            var name = SegmentationTester.OutputName(fresh.ValSet.Options.ImageDir, fresh.ValSet.ImagePaths[index]);
            var predicted = SegmentationLabelMaps.Read(Path.Combine(testDir, "predictions", "pred", name + ".png"), out _, out _);
            for (int p = 0; p < labels.Length; p++)
                if (labels[p] != fresh.ValSet.IgnoreIndex) expected[labels[p], predicted[p]]++;
        }
        var (_, columns, rows, counts) = ConfusionCsv.Read(Path.Combine(testDir, "confusion_matrix.csv"));
        Assert.That(columns, Is.EqualTo(fresh.ClassNames));
        Assert.That(rows, Is.EqualTo(fresh.ClassNames));
        Assert.That(counts, Is.EqualTo(expected));
        Assert.That(File.Exists(Path.Combine(testDir, "confusion_matrix.png")));
        Assert.That(File.ReadAllText(Path.Combine(testDir, "summary.md")), Does.Contain("](confusion_matrix.csv)").And.Contain("](confusion_matrix.png)"));
    }

    /// <summary>
    /// Multi-scale, flipped evaluation reads one loader per scale in lockstep (two workers each): every prediction must
    /// be the one made from that image's own views, each resized from the original file (here 64×64 to 48 and 80).
    /// </summary>
    [Test]
    public void MultiScaleEvaluationPredictsFromEachImagesOwnViews()
    {
        var config = Config();
        config.Data.NumWorkers = 2;
        config.Model.SegTest = new SegmentationTestConfig { Mode = "whole", Scales = [0.75, 1.25], Flip = true };
        using var task = new SegmentationTask(config, TextWriter.Null, TinyModel);
        var predictions = new Dictionary<int, ushort[]>();
        task.EvaluateFull((index, prediction, _, _) => predictions.Add(index, prediction));
        Assert.That(predictions.Keys, Is.EquivalentTo(Enumerable.Range(0, task.ValSet.Count)));
        task.Model.eval();
        var pipelines = SegmentationInference.TestPipelines(config.Data.Scale, config.Model.SegTest);
        for (int index = 0; index < task.ValSet.Count; index++)
        {
            using var scope = NewDisposeScope();
            var path = task.ValSet.ImagePaths[index];
            var (views, height, width) = SegmentationInference.TestViews(path, pipelines);
            Assert.That(views.Select(view => view.shape[2]), Is.EqualTo(new long[] { 48, 80 }));
            var expected = SegmentationInference.Labels(SegmentationInference.Scores((EncoderDecoder)task.Model, views, config.Model.SegTest, height, width));
            Assert.That(predictions[index], Is.EqualTo(expected), path);
        }
    }

    /// <summary>
    /// model.backbone.pretrained names a file that has since gone: building the task for a fresh run fails and disposes
    /// the model it built; for a resume the file is not read, the log says so, and the checkpoint's weights come back.
    /// </summary>
    [Test]
    public void MissingPretrainedFileFailsAFreshRunCleanlyButNotAResume()
    {
        var config = Config();
        var workDir = Path.Combine(_root, "work");
        ScrambledCheckpoint checkpoint;
        using (var task = new SegmentationTask(config, TextWriter.Null, TinyModel))
            checkpoint = ScrambledCheckpoint.Save(task, config, workDir);
        using var _ = checkpoint;

        var moved = Path.Combine(_root, "moved", "vim_t_midclstok_76p1acc.pth");
        config.Model.Backbone.Pretrained = moved;
        var built = new List<Tensor>();
        EncoderDecoder Tracked()
        {
            var model = TinyModel();
            built.AddRange(model.parameters());
            return model;
        }
        var fresh = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, Tracked).Dispose())!;
        Assert.That(fresh.Message, Does.Contain("model.backbone.pretrained").And.Contain(moved).And.Contain("not found"));
        Assert.That(built, Has.Count.GreaterThan(10));
        Assert.That(built.Where(t => !t.IsInvalid).Count(), Is.Zero, "the model built before the failure is disposed");

        var log = new StringWriter();
        using var resumed = new SegmentationTask(config, log, TinyModel, weightsFromCheckpoint: true);
        Assert.That(resumed.PretrainedReport, Is.Null);
        Assert.That(log.ToString(), Does.Contain(moved).And.Contain("not loaded"));
        Assert.That(checkpoint.DiffersFrom(resumed.Model), Is.True, "the freshly built model differs from the checkpoint");
        using var stopAtOnce = new CancellationTokenSource();
        stopAtOnce.Cancel();
        new Trainer<Batch>(resumed, config, workDir, "cfg", TextWriter.Null).Run(checkpoint.Path, stopAtOnce.Token);
        checkpoint.AssertRestoredIn(resumed.Model);
    }

    /// <summary>
    /// model.seg_head.auxiliary_in_index past the pyramid's levels fails FromConfig after the registered backbone, its neck
    /// and the decode head exist: the error names the key, and none of their tensors outlives the failure.
    /// </summary>
    [Test]
    public void FromConfigWithAnUnbuildableHeadNamesTheKeyAndFreesWhatItBuilt()
    {
        var config = Config();
        config.Model.Backbone.Name = "vimseg_tiny";
        config.Model.SegHead.AuxiliaryInIndex = 7;
        // Built inside a dispose scope, which frees the temporaries of weight initialisation (TorchSharp's own modules leave
        // some to the GC) but not parameters and buffers, which modules take out of the scope: those only Dispose frees.
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        Vim.Core.VimException? error;
        using (NewDisposeScope())
            error = Assert.Throws<Vim.Core.VimException>(() => EncoderDecoder.FromConfig(config, seed: 0).Dispose());
        Assert.That(error!.Message, Does.Contain("model.seg_head.auxiliary_in_index").And.Contain("7"));
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.Zero, "live tensors left by the failed build");

        // The count sees a built model's tensors, and disposing it frees them all: the check above can fail.
        config.Model.SegHead.AuxiliaryInIndex = 2;
        using (NewDisposeScope())
        using (var built = EncoderDecoder.FromConfig(config, seed: 0))
            Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.GreaterThan(100));
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.Zero);
    }

    /// <summary>
    /// A `vim train` run that cannot start (here the demo config with a head setting the model refuses) leaves the work
    /// dir's config.yaml as the previous run wrote it, and writes none into a new work dir.
    /// </summary>
    [Test]
    public void ARunThatCannotStartLeavesTheWorkDirsConfigAlone()
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var config = ExperimentConfig.Load(configPath, [$"data.root={Path.Combine(_root, "ade")}", "data.num_workers=0", "model.seg_head.auxiliary_in_index=7"]).Config;
        var dir = Path.Combine(_root, "work");
        Directory.CreateDirectory(dir);
        var recorded = Path.Combine(dir, "config.yaml");
        const string previous = "task: segmentation  # the run whose checkpoints are here\n";
        File.WriteAllText(recorded, previous);
        var error = Assert.Throws<Vim.Core.VimException>(() => TrainCommand.Train(config, dir, null, SingleProcessCommunicator.Instance, CancellationToken.None))!;
        Assert.That(error.Message, Does.Contain("model.seg_head.auxiliary_in_index"));
        Assert.That(File.ReadAllText(recorded), Is.EqualTo(previous));

        var fresh = Path.Combine(_root, "fresh");
        Assert.Throws<Vim.Core.VimException>(() => TrainCommand.Train(config, fresh, null, SingleProcessCommunicator.Instance, CancellationToken.None));
        Assert.That(File.Exists(Path.Combine(fresh, "config.yaml")), Is.False);
    }

    /// <summary>
    /// A load_from that cannot be read (here a truncated file) is found out only once the model is built, after the work dir
    /// was checked: the refused launch still leaves the work dir's config.yaml describing the checkpoints already there.
    /// </summary>
    [Test]
    public void ARunWhoseLoadFromFailsLeavesTheWorkDirsConfigAlone()
    {
        var whole = Path.Combine(_root, "whole.safetensors");
        using (NewDisposeScope())
            SafeTensorsFormat.Write(whole, [new KeyValuePair<string, Tensor>("decode_head.conv_seg.weight", zeros(5, 512, 1, 1, device: CPU))]);
        var truncated = Path.Combine(_root, "truncated.safetensors");
        var bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(truncated, bytes[..^100]);
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var config = ExperimentConfig.Load(configPath, [$"data.root={Path.Combine(_root, "ade")}", "data.num_workers=0", $"load_from={truncated}"]).Config;
        var dir = Path.Combine(_root, "work");
        Directory.CreateDirectory(dir);
        var recorded = Path.Combine(dir, WorkDirectory.ConfigFileName);
        const string previous = "task: segmentation  # the run whose checkpoints are here\n";
        File.WriteAllText(recorded, previous);

        var error = Assert.Throws<Vim.Core.VimException>(() => TrainCommand.Train(config, dir, null, SingleProcessCommunicator.Instance, CancellationToken.None))!;

        Assert.That(error.Message, Does.StartWith("load_from").And.Contain("truncated"));
        Assert.That(File.ReadAllText(recorded), Is.EqualTo(previous));
    }

    /// <summary>
    /// Loader settings the config gets wrong are refused naming their keys: an unusable batch size or worker count when
    /// the task is built (before any model), and a training split too small for one batch per process when a task built
    /// to train is built (before any model), or when an evaluation-only task's training data is opened.
    /// </summary>
    [Test]
    public void UnusableLoaderSettingsNameTheirKeys()
    {
        var probe = new ModelFactoryProbe<EncoderDecoder>(TinyModel);
        var config = Config();
        config.Data.BatchSize = 0;
        var error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size").And.Contain("got 0"));
        config = Config();
        config.Data.NumWorkers = -1;
        error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.num_workers").And.Contain("got -1"));
        Assert.That(probe.Called, Is.False, "refused before a model is built");

        // 8 training images: a batch of 9, or of 5 on each of 2 processes (4 images each), is never filled.
        config = Config();
        config.Data.BatchSize = 9;
        error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create, training: DataShard.Whole).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size is 9").And.Contain("8 image(s)").And.Contain(Path.Combine(_root, "ade")));
        config.Data.BatchSize = 5;
        error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create, training: new DataShard(0, 2)).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size is 5 per process with 2 processes").And.Contain("(4 per process)"));
        config.Data.BatchSize = 2;
        config.Data.CropSize = [32];
        error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create, training: DataShard.Whole).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.crop_size"));
        Assert.That(probe.Called, Is.False, "refused before a model is built");

        // An evaluation-only task (vim test) accepts the split; opening its training data refuses it.
        config = Config();
        config.Data.BatchSize = 9;
        using var task = new SegmentationTask(config, TextWriter.Null, TinyModel);
        error = Assert.Throws<Vim.Core.VimException>(() => task.OpenTrainingData(0, DataPosition.Start, DataShard.Whole).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size is 9").And.Contain("8 image(s)").And.Contain(Path.Combine(_root, "ade")));
        config.Data.BatchSize = 5;
        error = Assert.Throws<Vim.Core.VimException>(() => task.OpenTrainingData(0, DataPosition.Start, new DataShard(0, 2)).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size is 5 per process with 2 processes").And.Contain("(4 per process)"));
        config.Data.BatchSize = 4;
        task.OpenTrainingData(0, DataPosition.Start, new DataShard(1, 2)).Dispose();
    }

    /// <summary>
    /// model.seg_test settings evaluation cannot run with stop the task when it is built, naming the key, instead of
    /// after train.eval_interval iterations of training.
    /// </summary>
    [TestCase("mode", "slid", "model.seg_test.mode must be whole or slide, got 'slid'")]
    [TestCase("stride", "[40, 24]", "model.seg_test.stride 40x24 must be positive and at most the crop 32x32")]
    [TestCase("scales", "[1.0, 0.0]", "model.seg_test.scales must be positive, got 0")]
    public void AnUnusableTestSettingStopsTheTaskBeforeTraining(string key, string value, string expected)
    {
        var config = Config();
        var test = config.Model.SegTest;
        switch (key)
        {
            case "mode": test.Mode = value; break;
            case "stride": test.Stride = [40, 24]; break;
            default: test.Scales = [1.0, 0.0]; break;
        }
        var probe = new ModelFactoryProbe<EncoderDecoder>(TinyModel);
        var error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create).Dispose())!;
        Assert.That(error.Message, Is.EqualTo(expected), value);
        Assert.That(probe.Called, Is.False, "refused before a model is built");
    }

    /// <summary>
    /// `vim train` (TrainCommand.Train) refuses a training split too small for one batch before it builds the model or
    /// reads model.backbone.pretrained (here a file that does not exist), and leaves no config.yaml in the work dir.
    /// </summary>
    [Test]
    public void TrainRefusesASplitTooSmallForOneBatchBeforeTheModelAndThePretrainedFile()
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var absent = Path.Combine(_root, "absent", "vim_t_midclstok_76p1acc.pth");
        var (config, _) = ExperimentConfig.Load(configPath,
            [$"data.root={Path.Combine(_root, "ade")}", "data.batch_size=9", "data.num_workers=0", $"model.backbone.pretrained={absent}"]);
        var dir = Path.Combine(_root, "work");
        var error = Assert.Throws<Vim.Core.VimException>(() => TrainCommand.Train(config, dir, null, SingleProcessCommunicator.Instance, CancellationToken.None))!;
        Assert.That(error.Message, Is.EqualTo($"data.batch_size is 9, but the training split 'training' under data.root {Path.Combine(_root, "ade")} has 8 image(s): " +
            "not one full batch per epoch; lower data.batch_size or add training images"));
        Assert.That(File.Exists(Path.Combine(dir, "config.yaml")), Is.False);
    }

    /// <summary>
    /// model.seg_head.losses and sampler are checked when the task is built, before the model or model.backbone.pretrained:
    /// a config listing a loss twice, or sampling for losses without cross-entropy, stops there naming the key.
    /// </summary>
    [Test]
    public void UnusableDecodeLossSettingsStopTheTaskBeforeTheModel()
    {
        var probe = new ModelFactoryProbe<EncoderDecoder>(TinyModel);
        var config = Config();
        config.Model.SegHead.Losses = [new() { Type = SegmentationLossKind.Dice }, new() { Type = SegmentationLossKind.Dice, Weight = 2 }];
        var error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create).Dispose())!;
        Assert.That(error.Message, Does.StartWith("model.seg_head.losses[1].type dice is listed twice"));
        config.Model.SegHead.Losses = [new() { Type = SegmentationLossKind.Lovasz }];
        config.Model.SegHead.Sampler = new SegmentationSamplerConfig { Thresh = 0.7 };
        error = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, probe.Create).Dispose())!;
        Assert.That(error.Message, Does.StartWith("model.seg_head.sampler weights the pixels of the decode head's cross_entropy"));
        Assert.That(probe.Called, Is.False, "refused before a model is built");
    }

    /// <summary>
    /// The demo UperNet config trained with mmseg's two-loss decode head (cross-entropy 1, Dice 3) and OHEM sampling
    /// (thresh 0.7, min_kept 100 per image) for 8 iterations: every log.jsonl record and TensorBoard step carries decode.loss_ce,
    /// decode.loss_dice and aux.loss_ce, the logged total is their sum, the report charts each, and the loss is finite and
    /// falls over the run.
    /// </summary>
    [Test]
    public void TheDemoConfigTrainsWithSeveralDecodeLossesAndOhemAndLogsEachLoss()
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var config = ExperimentConfig.Load(configPath,
        [
            $"data.root={Path.Combine(_root, "ade")}", "data.crop_size=[32,32]", "data.scale=[64,64]", "data.batch_size=8", "data.num_workers=0",
            "schedule.max_iters=8", "schedule.warmup_iters=1", "train.log_interval=1", "train.eval_interval=8", "train.checkpoint_interval=8",
            "runtime.vis_backends=[local, tensorboard]",
            "model.seg_head.losses=[{type: cross_entropy, weight: 1.0}, {type: dice, weight: 3.0}]",
            "model.seg_head.sampler={type: ohem, thresh: 0.7, min_kept: 100}",
        ]).Config;
        var dir = Path.Combine(_root, "work");
        var result = TrainCommand.Train(config, dir, null, SingleProcessCommunicator.Instance, CancellationToken.None);
        Assert.That(result.Iteration, Is.EqualTo(8));

        var records = JsonLinesLog.Read(Path.Combine(dir, "log.jsonl")).Where(r => r.Has("loss")).ToList();
        Assert.That(records, Has.Count.EqualTo(8));
        string[] terms = ["decode.loss_ce", "decode.loss_dice", "aux.loss_ce"];
        foreach (var record in records)
        {
            Assert.That(terms.Concat(["decode.acc_seg", "aux.acc_seg"]).All(record.Has), $"iteration {record.Iteration}");
            Assert.That(record.Number("loss"), Is.EqualTo(terms.Sum(record.Number)).Within(1e-9), "the total is the sum of the losses");
            Assert.That(double.IsFinite(record.Number("loss")), $"iteration {record.Iteration}");
        }
        // Each batch holds all 8 training images (other crops and flips each time), so the loss moves with training more
        // than with the batch; both the total and the sampled cross-entropy fall.
        var losses = records.Select(r => r.Number("loss")).ToArray();
        var curves = string.Join("; ", terms.Select(t => t + ": " + string.Join(", ", records.Select(r => r.Number(t).ToString("0.000", CultureInfo.InvariantCulture)))));
        Assert.That(losses[^3..].Average(), Is.LessThan(losses[..3].Average()), curves);
        Assert.That(records[^1].Number("decode.loss_ce"), Is.LessThan(records[0].Number("decode.loss_ce")), curves);

        var events = TensorBoardEventReader.Read(Directory.GetFiles(Path.Combine(dir, "tensorboard")).Single());
        var tags = events.SelectMany(e => e.Values).Select(v => v.Tag).ToHashSet();
        Assert.That(terms.Select(t => "train/" + t), Is.SubsetOf(tags));

        var fields = records.SelectMany(r => r.Fields.EnumerateObject().Select(f => f.Name)).Distinct().ToList();
        Assert.That(terms.Concat(["loss"]), Is.SubsetOf(TrainingReport.LossTerms(fields)), "the report's loss chart draws each");
        TrainingReport.Write(dir, Path.Combine(dir, "report"));
        Assert.That(File.Exists(Path.Combine(dir, "report", "loss.png")));
    }

    [Test]
    public void ClassCountMismatchNamesTheConfigKey()
    {
        var config = Config();
        config.Model.NumClasses = 150;
        var e = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, TinyModel))!;
        Assert.That(e.Message, Does.Contain("model.num_classes is 150").And.Contain("5 classes"));
    }

    [Test]
    public void MissingDataRootSaysHowToMakeTheDemoData()
    {
        var config = Config();
        config.Data.Root = Path.Combine(_root, "nowhere");
        var e = Assert.Throws<Vim.Core.VimException>(() => new SegmentationTask(config, TextWriter.Null, TinyModel))!;
        Assert.That(e.Message, Does.Contain("data.root").And.Contain("vim data demo --kind ade"));
    }

    /// <summary>
    /// model.backbone.with_cp through `vim train`: the demo UperNet config (Vim-Ti's 24 blocks, mixer-output taps) trained
    /// with and without it logs the same losses and saves the same weights, to the bit, with drop path drawing masks.
    /// </summary>
    [Test]
    public void TheDemoConfigTrainsToTheSameLossesAndWeightsWithAndWithoutActivationCheckpointing()
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
            var weights = checkpoint.ModelStateDict().ToDictionary(e => e.Key, e => e.Value.to_type(ScalarType.Float32).data<float>().ToArray());
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
