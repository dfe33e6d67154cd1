using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Data;
using Vim.Tests.Segmentation;
using Vim.Tools.Commands;

namespace Vim.Tests.Detection;

/// <summary>
/// data.pipeline_switch (mmdet's PipelineSwitchHook / YOLOXModeSwitchHook) on the tiny demo COCO data (6 training images of
/// 64², batch 2: 3 iterations an epoch): the section's refusals, the samples on either side of the switch, the batch
/// source's switch with workers and shards, training resumed before and after the switch, and the log.
/// </summary>
public class PipelineSwitchTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = DetectionTaskTests.CreateDemoRoot("vimdense-pipeswitch-");

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>data.pipeline_switch written as YAML, as a config file would hold it.</summary>
    private static ConfigMap Section(string yaml) => (ConfigMap)ConfigLoader.Parse(yaml, "switch.yaml");

    /// <summary>Mosaics of 40² tiles (80² canvases, above the 64² LSJ crop) until the switch, which turns the mosaic off.</summary>
    private ExperimentConfig MosaicUntil(string at, int workers = 0)
    {
        var config = DetectionTaskTests.ConfigAt(_root);
        config.Data.Mosaic = new MosaicConfig { ImgScale = [40, 40] };
        config.Data.PipelineSwitch = Section($"{{at: {at}, mosaic: null}}");
        config.Data.NumWorkers = workers;
        return config;
    }

    private static ExperimentConfig Without(ExperimentConfig config, bool mosaic)
    {
        var copy = ConfigBinder.Bind<ExperimentConfig>((ConfigMap)ConfigBinder.ToNode(config));
        copy.Data.PipelineSwitch = null;
        if (!mosaic) copy.Data.Mosaic = null;
        return copy;
    }

    private string WriteConfig(string name, string yaml)
    {
        var path = Path.Combine(_root, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    /// <summary>
    /// A key the section leaves out keeps data's value, one set to null turns it off, one given replaces it; the section comes
    /// back unchanged from a work dir's config.yaml (every key written out), where null and left out still differ.
    /// </summary>
    [Test]
    public void LeftOutKeysKeepTheirValueNullTurnsOffAndConfigYamlKeepsTheDifference()
    {
        var path = WriteConfig("det.yaml", "task: detection\nschedule: {max_iters: 10}\ndata:\n  mosaic: {img_scale: [32, 32]}\n  mixup: {img_scale: [64, 64]}\n" +
            "  pipeline_switch: {at: 6, mosaic: null, copy_paste: {max_num_pasted: 3}, train_pipeline: [{random_flip: {prob: 0.5}}, {normalize: {}}]}\n");
        var config = ExperimentConfig.Load(path).Config;
        var change = PipelineSwitch.Read(config)!;
        Assert.That((change.At, change.CountsEpochs), Is.EqualTo((6, false)));
        var after = change.ApplyTo(config).Data;
        Assert.That(after.Mosaic, Is.Null, "mosaic: null turns it off");
        Assert.That(after.MixUp!.ImgScale, Is.EqualTo(new List<int> { 64, 64 }), "mixup left out: kept");
        Assert.That(after.CopyPaste!.MaxNumPasted, Is.EqualTo(3), "copy_paste given: replaces");
        Assert.That(after.TrainPipeline!.Items, Has.Count.EqualTo(2));
        Assert.That(after.PipelineSwitch, Is.Null);
        Assert.That(config.Data.Mosaic, Is.Not.Null, "the config itself is unchanged");
        Assert.That(change.Changes(), Is.EqualTo("data.train_pipeline → data.pipeline_switch.train_pipeline (2 steps), data.mosaic off, " +
            "data.copy_paste → data.pipeline_switch.copy_paste"));

        var saved = WriteConfig("saved.yaml", ConfigWriter.ToYaml(ConfigBinder.ToNode(config)));
        var reread = PipelineSwitch.Read(ExperimentConfig.Load(saved).Config)!;
        Assert.That((reread.Mosaic, reread.MixUp.Named, reread.Changes()), Is.EqualTo((change.Mosaic, false, change.Changes())));
    }

    [TestCase("{at: 0, mosaic: null}", "data.pipeline_switch.at must be at least 1 (iterations trained with data's own pipeline before the switch), got 0")]
    [TestCase("{at: 10, mosaic: null}", "data.pipeline_switch.at is 10, but the run is 10 iterations (schedule.max_iters): at counts the iterations " +
        "trained before the switch, so it must be below 10 for the switched pipeline ever to run")]
    [TestCase("{at: 2, mosiac: null}", "unknown key 'data.pipeline_switch.mosiac'; did you mean 'data.pipeline_switch.mosaic'? " +
        "(valid keys here: at, train_pipeline, mosaic, mixup, copy_paste)")]
    [TestCase("{at: two, mosaic: null}", "'data.pipeline_switch.at' must be an integer, got 'two'")]
    public void BadSectionsAreRefusedNamingTheKeyAndLine(string section, string expected)
    {
        var path = WriteConfig("bad.yaml", $"task: detection\nschedule: {{max_iters: 10}}\ndata:\n  pipeline_switch: {section}\n");
        var error = Assert.Throws<VimException>(() => ExperimentConfig.Load(path))!;
        Assert.That(error.Message, Is.EqualTo($"{path}:4: {expected}"));
    }

    [Test]
    public void EpochRunsCountAtInEpochsAndEmptyOrForeignSectionsAreRefused()
    {
        var epochs = WriteConfig("epochs.yaml", "task: detection\nschedule: {max_iters: null, max_epochs: 3}\ndata:\n  pipeline_switch: {at: 3, mosaic: null}\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(epochs))!.Message, Is.EqualTo($"{epochs}:4: data.pipeline_switch.at is 3, " +
            "but the run is 3 epochs (schedule.max_epochs): at counts the epochs trained before the switch, so it must be below 3 for the switched pipeline ever to run"));
        var change = PipelineSwitch.Read(ExperimentConfig.Load(epochs, ["data.pipeline_switch.at=2"]).Config)!;
        Assert.That(change.Iteration(new TrainingLength(new ExperimentConfig { Schedule = new ScheduleConfig { MaxIters = 21 } }, 7)), Is.EqualTo(14),
            "2 epochs of 7 iterations");

        var nothing = WriteConfig("nothing.yaml", "task: detection\nschedule: {max_iters: 10}\ndata:\n  pipeline_switch: {at: 2}\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(nothing))!.Message, Does.StartWith($"{nothing}:4: data.pipeline_switch switches nothing"));
        var noAt = WriteConfig("noat.yaml", "task: detection\nschedule: {max_iters: 10}\ndata:\n  pipeline_switch: {mosaic: null}\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(noAt))!.Message, Does.StartWith($"{noAt}:4: data.pipeline_switch has no 'at'"));
        var segmentation = WriteConfig("seg.yaml", "task: segmentation\nschedule: {max_iters: 10}\ndata:\n  pipeline_switch: {at: 2, mixup: {}}\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation))!.Message, Is.EqualTo($"{segmentation}:4: data.pipeline_switch.mixup " +
            "is a detection setting, but the config's task is segmentation, which never reads it; a segmentation switch changes train_pipeline alone"));
    }

    /// <summary>The switched pipeline and mixing transforms meet the checks data's own meet, before any data is read, by their own keys.</summary>
    [Test]
    public void TheSwitchedPipelineAndMixersAreCheckedAsDatasOwnAre()
    {
        var config = MosaicUntil("2");
        config.Data.PipelineSwitch = Section("{at: 2, train_pipeline: [{random_flip: {prob: 0.5}}]}");
        Assert.That(Assert.Throws<VimException>(() => DataPipelines.Check(config))!.Message, Does.StartWith("switch.yaml:1: data.pipeline_switch.train_pipeline has no normalize step"));
        config.Data.PipelineSwitch = Section("{at: 2, train_pipeline: [{normalize: {}}, {random_flip: {prob: 0.5}}]}");
        Assert.That(Assert.Throws<VimException>(() => new DetectionData(config))!.Message,
            Does.StartWith("switch.yaml:1: data.pipeline_switch.train_pipeline[1]: random_flip comes after normalize (data.pipeline_switch.train_pipeline[0])"));
        config.Data.PipelineSwitch = Section("{at: 2, mosaic: {prob: 2}}");
        Assert.That(Assert.Throws<VimException>(() => new DetectionData(config))!.Message, Does.StartWith("data.pipeline_switch.mosaic.prob must be a probability in [0, 1]"));
        config.Data.PipelineSwitch = Section("{at: 2, copy_paste: {paste_by_box: true}}");
        Assert.That(Assert.Throws<VimException>(() => new DetectionData(config))!.Message,
            Does.StartWith("data.pipeline_switch.copy_paste.paste_by_box is true, but model.det_head.mask_on is true"));
    }

    /// <summary>
    /// Before the switch every sample is an 80² mosaic (twice the 40² img_scale) and the samples are those of the config
    /// without a switch; from the switch's batch on they are the plain LSJ samples, at most the 64² crop, exactly those of
    /// the config without mosaic, with the same per-sample draws. `vim data browse` draws that stream: at iteration 2 (after
    /// 4 samples of batch 2), and with an epoch-counted run from epoch 1 (--epoch 1, after 3 iterations) on.
    /// </summary>
    [Test]
    public void SamplesAreMosaicsBeforeTheSwitchAndThePlainPipelinesAfterIt()
    {
        var config = MosaicUntil("2");
        var plain = new DetectionData(Without(config, mosaic: false)).TrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(0, endless: true).Take(8).ToList();
        var mosaics = new DetectionData(Without(config, mosaic: true)).TrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(0, endless: true).Take(4).ToList();
        Assert.That(mosaics.Select(s => (s.Height, s.Width)), Has.All.EqualTo((80, 80)));
        Assert.That(plain.Skip(4).Select(s => Math.Max(s.Height, s.Width)), Has.All.LessThanOrEqualTo(64));

        var drawings = DataBrowseCommand.Browse(config, training: true, count: 8, epoch: 0, Path.Combine(_root, "browse"), TextWriter.Null);
        var expected = mosaics.Concat(plain.Skip(4)).ToList();
        for (int i = 0; i < 8; i++)
        {
            using var drawn = Cv2.ImRead(drawings[i]);
            Assert.That((drawn.Rows, drawn.Cols), Is.EqualTo((expected[i].Height, expected[i].Width)), $"sample {i}");
        }
        var data = new DetectionData(config);
        var switching = data.TrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(new LoaderPosition(0, 0), endless: true, until: new LoaderPosition(0, 2))
            .Concat(data.SwitchedTrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(new LoaderPosition(0, 2), endless: true)).Take(8).ToList();
        for (int i = 0; i < 8; i++)
            Assert.That(switching[i].Image, Is.EqualTo(expected[i].Image), $"sample {i}, pixel for pixel");

        var epochs = MosaicUntil("1");
        epochs.Schedule = new ScheduleConfig { MaxIters = null, MaxEpochs = 3, WarmupIters = 1 };
        epochs.Train = new TrainConfig { EvalInterval = 1, CheckpointInterval = 1 };
        var progress = new StringWriter();
        var epochOne = DataBrowseCommand.Browse(epochs, training: true, count: 2, epoch: 1, Path.Combine(_root, "browse1"), progress);
        var epochZero = DataBrowseCommand.Browse(epochs, training: true, count: 2, epoch: 0, Path.Combine(_root, "browse0"), TextWriter.Null);
        Assert.That(epochOne.Concat(epochZero).Select(path => { using var m = Cv2.ImRead(path); return m.Rows == 80; }),
            Is.EqualTo(new[] { false, false, true, true }), "epoch 1 past the switch is plain, epoch 0 mosaics");
        Assert.That(progress.ToString(), Does.Contain("data.pipeline_switch after 1 epoch (3 iterations) (data.mosaic off): on one process of 3 iterations an epoch, " +
            "--epoch 1 lies past it"));
    }

    /// <summary>
    /// `vim data browse` finds the switch's batch from the loader's epoch alone, without resolving (and so checking) the
    /// run's schedule, which is the trainer's to refuse on the process count it runs on: an epoch of 3 iterations with
    /// train.accumulate_steps 2 (a schedule one process could not train) is still drawn, mosaics for epoch 0, plain after it.
    /// </summary>
    [Test]
    public void BrowseFindsTheSwitchWithoutResolvingTheSchedule()
    {
        var config = MosaicUntil("1");
        config.Schedule = new ScheduleConfig { MaxIters = null, MaxEpochs = 3, WarmupIters = 1 };
        config.Train = new TrainConfig { EvalInterval = 1, CheckpointInterval = 1, AccumulateSteps = 2 };
        var drawings = DataBrowseCommand.Browse(config, training: true, count: 8, epoch: 0, Path.Combine(_root, "browse"), TextWriter.Null);
        Assert.That(drawings.Select(path => { using var m = Cv2.ImRead(path); return m.Rows == 80; }),
            Is.EqualTo(new[] { true, true, true, true, true, true, false, false }), "epoch 0 (3 batches of 2) mosaics, epoch 1 plain");
    }

    /// <summary>
    /// The task's batch source switches at the batch it is told: the batches before are the loader's, those after the
    /// switched loader's from the same position, bit for bit, with two worker threads and on rank 1 of 2 processes; a source
    /// opened past the switch (a resume) and switched at once reads the switched loader from its first batch.
    /// </summary>
    [TestCase(0, 1)]
    [TestCase(2, 2)]
    public void TheBatchSourceSwitchesAtABatchBoundary(int workers, int processes)
    {
        var config = MosaicUntil("3", workers);
        config.Data.BatchSize = 2 / processes;
        var shard = new DataShard(processes - 1, processes);
        using var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector);
        var data = task.Data;
        int seed = config.Runtime.Seed;
        var before = data.TrainingLoader(seed, shard).Infinite().Take(2).Select(Images).ToList();
        var after = data.SwitchedTrainingLoader(seed, shard).Infinite(new LoaderPosition(0, 2)).Take(3).Select(Images).ToList();
        Assert.That(before[0].Length, Is.Not.EqualTo(after[0].Length), "mosaic batches are 96² (80² padded to 32), plain ones at most 64²");

        using (var source = task.OpenTrainingData(seed, DataPosition.Start, shard))
        {
            var read = new List<float[]> { Images(source.Next()), Images(source.Next()) };
            source.SwitchPipeline();
            for (int i = 0; i < 3; i++) read.Add(Images(source.Next()));
            Assert.That(read, Is.EqualTo(before.Concat(after).ToList()));
        }
        using var resumed = task.OpenTrainingData(seed, new DataPosition(0, 2L * config.Data.BatchSize * processes), shard);
        resumed.SwitchPipeline();
        Assert.That(Images(resumed.Next()), Is.EqualTo(after[0]), "resumed past the switch");
    }

    private static float[] Images(Batch batch)
    {
        using (batch.Images) return batch.Images.data<float>().ToArray();
    }

    /// <summary>
    /// Training 8 iterations with the mosaic switched off after <paramref name="at"/> iterations, resumed from the
    /// checkpoint of iteration 4 (before the switch at 6, after it at 2), ends with the uninterrupted run's weights, bit for
    /// bit; the uninterrupted run logs the switch at its iteration, and trains to other weights than without the switch.
    /// </summary>
    [TestCase(2)]
    [TestCase(6)]
    public void ARunResumedBeforeOrAfterTheSwitchEndsWithTheUninterruptedRunsWeights(int at)
    {
        var config = MosaicUntil(at.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var files = new DataTestFiles();
        var runs = TrainSplitListTests.StraightAndResumedRuns(config, files,
            fromCheckpoint => new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector, weightsFromCheckpoint: fromCheckpoint));
        Assert.That(runs.Resumed, Is.EqualTo(runs.Straight), "bit for bit the uninterrupted run's weights");
        var switches = JsonLinesLog.Read(files.PathOf("straight", "log.jsonl")).Where(r => r.Mode == TrainingLogModes.PipelineSwitch).ToList();
        Assert.That(switches.Select(r => r.Iteration), Is.EqualTo(new[] { at }));
        var resumedSwitches = JsonLinesLog.Read(files.PathOf("resumed", "log.jsonl")).Count(r => r.Mode == TrainingLogModes.PipelineSwitch);
        Assert.That(resumedSwitches, Is.EqualTo(at > 4 ? 1 : 0), "the resumed run logs a switch it makes, not one behind it");

        if (at != 6) return;
        var unswitched = Without(config, mosaic: true);
        using var otherFiles = new DataTestFiles();
        var runsWithout = TrainSplitListTests.StraightAndResumedRuns(unswitched, otherFiles,
            fromCheckpoint => new DetectionTask(unswitched, TextWriter.Null, DetectionTaskTests.TinyDetector, weightsFromCheckpoint: fromCheckpoint));
        Assert.That(runs.Straight, Is.Not.EqualTo(runsWithout.Straight), "the switch changes what iterations 6 and 7 train on");
    }

    /// <summary>An epoch-counted run (3 iterations an epoch) switching after epoch 1 says so on the console and in log.jsonl.</summary>
    [Test]
    public void AnEpochCountedRunPrintsAndLogsTheSwitch()
    {
        var config = MosaicUntil("1");
        config.Schedule = new ScheduleConfig { MaxIters = null, MaxEpochs = 2, WarmupIters = 1 };
        config.Train = new TrainConfig { EvalInterval = 2, CheckpointInterval = 2, LogInterval = 3 };
        var workDir = Path.Combine(_root, "work");
        var console = new StringWriter();
        using (var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector))
            Assert.That(new Trainer<Batch>(task, config, workDir, "cfg", console).Run(null).Iteration, Is.EqualTo(6));
        Assert.That(console.ToString(), Does.Contain("data.pipeline_switch: switches after 1 epoch (3 iterations) of 6: data.mosaic off")
            .And.Contain("data.pipeline_switch after 1 epoch (3 iterations): data.mosaic off"));
        var record = JsonLinesLog.Read(Path.Combine(workDir, "log.jsonl")).Single(r => r.Mode == TrainingLogModes.PipelineSwitch);
        Assert.That((record.Iteration, record.Number("first_epoch")), Is.EqualTo((3, 2.0)));
    }

    /// <summary>
    /// Segmentation switches its train_pipeline alone: 32² random crops of the demo's 64² images until iteration 2, then
    /// the switch's plain 16² resize, as `vim data browse` draws them.
    /// </summary>
    [Test]
    public void ASegmentationConfigSwitchesItsTrainPipeline()
    {
        var segRoot = Directory.CreateTempSubdirectory("vimdense-pipeswitch-seg-").FullName;
        try
        {
            DemoDatasetGenerator.Generate(new DemoOptions
            {
                Kind = DemoKind.Ade, OutputDir = Path.Combine(segRoot, "ade"), TrainImages = 8, ValImages = 2, Width = 64, Height = 64, Seed = 5,
            });
            var config = SegmentationTaskTests.ConfigAt(segRoot);
            config.Data.PipelineSwitch = Section("{at: 2, train_pipeline: [{resize: {scales: [[16, 16]], keep_ratio: false}}, {normalize: {}}]}");
            var drawings = DataBrowseCommand.Browse(config, training: true, count: 6, epoch: 0, Path.Combine(segRoot, "browse"), TextWriter.Null);
            Assert.That(drawings.Select(path => { using var m = Cv2.ImRead(path); return (m.Rows, m.Cols); }),
                Is.EqualTo(new[] { (32, 32), (32, 32), (32, 32), (32, 32), (16, 16), (16, 16) }));
            Assert.That(new SegmentationData(config).PipelineSwitch!.Changes(), Is.EqualTo("data.train_pipeline → data.pipeline_switch.train_pipeline (2 steps)"));
        }
        finally
        {
            Directory.Delete(segRoot, recursive: true);
        }
    }
}
