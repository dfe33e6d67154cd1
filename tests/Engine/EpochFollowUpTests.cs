using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Data.Evaluation.Reports;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// The loose ends of epoch-counted runs: train.val_begin (MMEngine's) on the toy trainer, with evaluations and early stopping
/// at hand-computed iterations; the start-up and early-stop lines in the run's unit; vim report's epoch ends worked out from
/// a hand-written log with a resume in it; `vim config show --resolved --processes K` counting the demo data's epoch.
/// </summary>
public class EpochFollowUpTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-epochs2-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Dir(string name) => Path.Combine(_root, name);

    /// <summary>The toy (32 samples, batch 4: 8 iterations an epoch) counted in epochs, or in iterations with <paramref name="maxIters"/>.</summary>
    private static ExperimentConfig Config(int? maxEpochs, int? maxIters, int evalInterval, int valBegin) => new()
    {
        Optimizer = new OptimizerConfig { Lr = 0.01, WeightDecay = 0.01 },
        Schedule = new ScheduleConfig { MaxEpochs = maxEpochs, MaxIters = maxIters, Policy = LrPolicy.Multistep, Milestones = [], WarmupIters = 0 },
        Train = new TrainConfig { LogInterval = 4, EvalInterval = evalInterval, CheckpointInterval = maxEpochs is null ? 8 : 1, KeepLast = 5, ValBegin = valBegin },
        Runtime = new RuntimeConfig { Seed = 3 },
    };

    private (TrainingResult Result, int[] Evaluations, string Console) Train(ExperimentConfig config, string name, ToyRegressionTask? task = null)
    {
        set_num_threads(1);
        using var toy = task ?? new ToyRegressionTask(dropout: 0);
        var console = new StringWriter();
        var result = new Trainer<(Tensor, Tensor)>(toy, config, Dir(name), "cfg", console).Run(null);
        var evaluations = JsonLinesLog.Read(Path.Combine(Dir(name), TrainingLogWriter.LocalFileName)).Where(r => r.IsEvaluation).Select(r => r.Iteration).ToArray();
        return (result, evaluations, console.ToString());
    }

    /// <summary>
    /// 4 epochs of 8 iterations, evaluations every epoch from epoch 2: at iterations 16, 24, 32 (none at 8). Counted in
    /// iterations (20, every 4 from iteration 10): 12, 16, 20; every 6 from 13 of 20: 18 and the last, 20; with
    /// eval_interval 0 the last alone whatever val_begin (MMEngine's loops: progress ≥ val_begin and (a multiple of the
    /// interval or the last)).
    /// </summary>
    [Test]
    public void EvaluationsStartAtValBeginInEpochsAndInIterations()
    {
        var epochs = Train(Config(4, null, evalInterval: 1, valBegin: 2), "epochs");
        Assert.That(epochs.Evaluations, Is.EqualTo(new[] { 16, 24, 32 }));
        Assert.That(epochs.Console, Does.Contain("milestones at iterations [], evaluations every 8 iterations from iteration 16 (train.val_begin), checkpoints every 8 iterations"));

        Assert.That(Train(Config(null, 20, evalInterval: 4, valBegin: 10), "iterations").Evaluations, Is.EqualTo(new[] { 12, 16, 20 }));
        Assert.That(Train(Config(null, 20, evalInterval: 6, valBegin: 13), "uneven").Evaluations, Is.EqualTo(new[] { 18, 20 }));
        var endOnly = Train(Config(2, null, evalInterval: 0, valBegin: 2), "end");
        Assert.That(endOnly.Evaluations, Is.EqualTo(new[] { 16 }));
        Assert.That(endOnly.Console, Does.Contain("milestones at iterations [], no evaluation during training (one after the last iteration, 16: train.eval_interval 0), checkpoints every"));
        Assert.That(endOnly.Console, Does.Not.Contain("evaluations every"));
    }

    /// <summary>
    /// Early stopping counts the evaluations that run: patience 1 with a metric that falls at the second evaluation stops a
    /// 4-epoch run at epoch 2 (iteration 16) from val_begin 1, and at epoch 3 (iteration 24) from val_begin 2, where the
    /// evaluations are epochs 2 and 3. The lines say where in epochs; an iteration-counted run's in iterations.
    /// </summary>
    [Test]
    public void EarlyStoppingStartsCountingAtValBeginAndSaysWhereInTheRunsUnit()
    {
        ToyRegressionTask Falling() => new(dropout: 0) { MetricsAtEvaluation = n => new Dictionary<string, double> { ["neg_mse"] = n == 1 ? -1.0 : -2.0 } };
        ExperimentConfig Stopping(int? epochs, int? iterations, int evalInterval, int valBegin)
        {
            var config = Config(epochs, iterations, evalInterval, valBegin);
            config.Train.EarlyStopping = new EarlyStoppingConfig { Patience = 1 };
            return config;
        }

        var fromStart = Train(Stopping(4, null, 1, 1), "from1", Falling());
        Assert.That((fromStart.Result.Iteration, fromStart.Evaluations), Is.EqualTo((16, new[] { 8, 16 })));
        var later = Train(Stopping(4, null, 1, 2), "from2", Falling());
        Assert.That((later.Result.Iteration, later.Evaluations), Is.EqualTo((24, new[] { 16, 24 })));
        var message = later.Result.EarlyStop!.Message;
        Assert.That(later.Console, Does.Contain($"early stopping at iteration 24 (epoch 3 of 4): {message}; checkpoint "));
        Assert.That(TrainCommand.Outcome(later.Result, "D", "R"), Is.EqualTo($"stopped early at iteration 24 (epoch 3 of 4) (train.early_stopping: {message}); best -1; checkpoints in D"));

        var counted = Train(Stopping(null, 40, 8, 9), "iterations", Falling());
        Assert.That((counted.Result.Iteration, counted.Evaluations), Is.EqualTo((24, new[] { 16, 24 })));
        Assert.That(counted.Console, Does.Contain($"early stopping at iteration 24 of 40: {counted.Result.EarlyStop!.Message}"));
        Assert.That(TrainCommand.Outcome(counted.Result, "D", "R"), Does.StartWith("stopped early at iteration 24 of 40 (train.early_stopping: "));
    }

    [Test]
    public void ValBeginOutsideTheRunIsRefusedByName()
    {
        Assert.That(() => TrainingSettings.Check(Config(4, null, 1, 0)), Throws.TypeOf<VimException>().With.Message.EqualTo(
            "train.val_begin must be at least 1 (the first epoch after which to evaluate), got 0"));
        Assert.That(() => TrainingSettings.Check(Config(4, null, 1, 5)), Throws.TypeOf<VimException>().With.Message.Contains(
            "train.val_begin 5 (the first epoch after which to evaluate: at most max_epochs)"));
        Assert.That(() => TrainingSettings.Check(Config(null, 20, 4, 21)), Throws.TypeOf<VimException>().With.Message.StartsWith(
            "train.val_begin must be at most schedule.max_iters (20)"));
        Assert.That(EpochSchedule.Resolve(Config(4, null, 1, 3), 8).Config.Train.ValBegin, Is.EqualTo(24), "epoch 3 ends at iteration 3 × 8");
    }

    /// <summary>
    /// A log of 4 epochs of 7 iterations: the first launch logged to iteration 15 and an evaluation at 14, then crashed; the
    /// second resumed from the checkpoint of iteration 7 and went on to 28. Its epoch ends are 7, 14, 21, 28, from the
    /// epoch_length records, and the same from the records' epochs alone in a log without them (iteration 5 in epoch 1, 10
    /// in epoch 2, 15 and 20 in epoch 3 leave only 7); the abandoned launch's records play no part.
    /// </summary>
    [Test]
    public void EpochEndsComeFromTheLogThroughAResume()
    {
        string Training(int iteration, int epoch) => $"{{\"iter\": {iteration}, \"lr\": 0.01, \"loss\": 1.0, \"time\": 0.1, \"data_time\": 0.01, \"memory_mb\": 10, \"epoch\": {epoch}}}";
        string Evaluation(int iteration, int epoch) => $"{{\"iter\": {iteration}, \"mode\": \"val\", \"epoch\": {epoch}, \"mIoU\": {iteration}}}";
        string Length(int iteration) => $"{{\"iter\": {iteration}, \"mode\": \"epoch_length\", \"iters_per_epoch\": 7, \"max_epochs\": 4}}";
        var lines = new List<string>
        {
            Length(0), Training(5, 1), Training(10, 2), Evaluation(14, 2), Training(15, 3),
            "{\"iter\": 7, \"mode\": \"resume\", \"checkpoint\": \"iter_0000007.safetensors\"}", Length(7),
            Training(10, 2), Training(15, 3), Evaluation(14, 2), Training(20, 3), Evaluation(21, 3), Training(25, 4), Training(28, 4), Evaluation(28, 4),
        };
        var recorded = Path.Combine(Directory.CreateDirectory(Dir("recorded")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(recorded, lines);
        var history = TrainingLogHistory.Read(recorded);
        Assert.That(history.Epochs, Is.EqualTo(new EpochLength(7, 4)));
        Assert.That(history.EpochEnds, Is.EqualTo(new[] { 7, 14, 21, 28 }));
        Assert.That(TrainingReport.EpochMarks(history.EpochEnds), Is.EqualTo(new[]
            { new ChartMark(7, "ep 1"), new ChartMark(14, "ep 2"), new ChartMark(21, "ep 3"), new ChartMark(28, "ep 4") }));
        var report = File.ReadAllText(TrainingReport.Write(Dir("recorded"), Dir("recorded-report")));
        Assert.That(report, Does.Contain("Epoch-based schedule (schedule.max_epochs): 4 epochs of 7 iterations (28 iterations); " +
            "the log reaches the end of epoch 4 (iteration 28). Dashed lines on the iteration axes mark the end of each epoch, labelled ep k."));

        var inferred = Path.Combine(Directory.CreateDirectory(Dir("inferred")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(inferred, lines.Where(l => !l.Contains("epoch_length", StringComparison.Ordinal)));
        var fromEpochs = TrainingLogHistory.Read(inferred);
        Assert.That(fromEpochs.Epochs, Is.EqualTo(new EpochLength(7, null)));
        Assert.That(fromEpochs.EpochEnds, Is.EqualTo(new[] { 7, 14, 21, 28 }));

        // Cut after iteration 10: epoch 1 at 5 and epoch 2 at 10 allow 5 to 9 iterations an epoch, so nothing is marked.
        var open = Path.Combine(Directory.CreateDirectory(Dir("open")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(open, [Training(5, 1), Training(10, 2)]);
        Assert.That(TrainingLogHistory.Read(open).EpochEnds, Is.Empty);
        Assert.That(File.ReadAllText(TrainingReport.Write(Dir("open"), Dir("open-report"))), Does.Contain("does not tell how many iterations an epoch has"));

        // Iteration 10 in epoch 1 after iteration 5 in epoch 2: no epoch length fits both.
        var contradictory = Path.Combine(Directory.CreateDirectory(Dir("bad")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(contradictory, [Training(5, 2), Training(10, 1)]);
        Assert.That(() => TrainingLogHistory.Read(contradictory), Throws.TypeOf<VimException>().With.Message.StartsWith(
            $"{contradictory} line 2: epoch 1 at iteration 10 contradicts the epochs of the records before it"));

        // An iteration-counted run: no epochs, no marks, nothing said.
        var plain = Path.Combine(Directory.CreateDirectory(Dir("plain")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(plain, [Training(5, 1).Replace(", \"epoch\": 1", "", StringComparison.Ordinal)]);
        Assert.That((TrainingLogHistory.Read(plain).Epochs, TrainingLogHistory.Read(plain).EpochEnds), Is.EqualTo(((EpochLength?)null, Array.Empty<int>())));
        Assert.That(File.ReadAllText(TrainingReport.Write(Dir("plain"), Dir("plain-report"))), Does.Not.Contain("epoch"));
    }

    /// <summary>
    /// data.pipeline_switch's record in the report: a launch switched after iteration 14 (an epoch end of 7-iteration epochs)
    /// and was resumed from iteration 7, before it; its switch record is dropped with what it logged after 7, and the resumed
    /// launch's own switch (at 14 again) is the one reported, marked on the charts beside "ep 2". An iteration-counted run's
    /// switch at 10 gets a line of its own; without a switch the marks are the epoch marks alone.
    /// </summary>
    [Test]
    public void ThePipelineSwitchIsMarkedOnTheChartsAndDroppedWithTheLaunchAResumeAbandoned()
    {
        string Training(int iteration, int epoch) => $"{{\"iter\": {iteration}, \"lr\": 0.01, \"loss\": 1.0, \"time\": 0.1, \"data_time\": 0.01, \"memory_mb\": 10, \"epoch\": {epoch}}}";
        string Switch(int iteration, string message) => $"{{\"iter\": {iteration}, \"mode\": \"pipeline_switch\", \"message\": \"{message}\", \"first_epoch\": 3}}";
        const string Length = "{\"iter\": 0, \"mode\": \"epoch_length\", \"iters_per_epoch\": 7, \"max_epochs\": 4}";
        var log = Path.Combine(Directory.CreateDirectory(Dir("switch")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(log,
        [
            Length, Training(7, 1), Training(14, 2), Switch(14, "abandoned"), Training(21, 3),
            "{\"iter\": 7, \"mode\": \"resume\", \"checkpoint\": \"iter_0000007.safetensors\"}", Length,
            Training(14, 2), Switch(14, "resumed"), Training(21, 3), Training(28, 4),
        ]);
        var history = TrainingLogHistory.Read(log);
        Assert.That((history.PipelineSwitch?.Iteration, history.PipelineSwitch?.Text("message")), Is.EqualTo(((int?)14, "resumed")));
        Assert.That(TrainingReport.WithPipelineSwitch(TrainingReport.EpochMarks(history.EpochEnds), history.PipelineSwitch?.Iteration), Is.EqualTo(new[]
            { new ChartMark(7, "ep 1"), new ChartMark(14, "ep 2 · switch"), new ChartMark(21, "ep 3"), new ChartMark(28, "ep 4") }));
        Assert.That(File.ReadAllText(TrainingReport.Write(Dir("switch"), Dir("switch-report"))),
            Does.Contain("The training pipeline switched after iteration 14 (marked \"switch\" on the charts): resumed."));

        // Resumed from 7 and not yet at the switch again: the abandoned launch's switch is no part of the run.
        var before = Path.Combine(Directory.CreateDirectory(Dir("switch-before")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(before, [Training(7, 1), Training(14, 2), Switch(14, "abandoned"), "{\"iter\": 7, \"mode\": \"resume\"}", Training(10, 2)]);
        Assert.That(TrainingLogHistory.Read(before).PipelineSwitch, Is.Null);

        // Resumed after the switch: the first launch's record stands. An unlabelled (thinned) mark takes the label alone.
        var after = Path.Combine(Directory.CreateDirectory(Dir("switch-after")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(after, [Training(7, 1), Switch(10, "kept"), Training(14, 2), "{\"iter\": 14, \"mode\": \"resume\"}", Training(21, 3)]);
        Assert.That(TrainingLogHistory.Read(after).PipelineSwitch?.Text("message"), Is.EqualTo("kept"));
        Assert.That(TrainingReport.WithPipelineSwitch([new ChartMark(7, "ep 1")], 10), Is.EqualTo(new[] { new ChartMark(7, "ep 1"), new ChartMark(10, "switch") }));
        Assert.That(TrainingReport.WithPipelineSwitch([new ChartMark(10, null)], 10), Is.EqualTo(new[] { new ChartMark(10, "switch") }));
        Assert.That(TrainingReport.WithPipelineSwitch([new ChartMark(7, "ep 1")], null), Is.EqualTo(new[] { new ChartMark(7, "ep 1") }));
    }

    /// <summary>
    /// A work dir reused by a fresh launch (no --resume, no marker: the log is cut where the iterations restart): the first
    /// launch's epoch_length (7 iterations, 4 epochs) is no part of the second's history. An iteration-counted second launch
    /// has no epochs and its report says none; an epoch-counted one's own record (5 iterations, 6 epochs) stands.
    /// </summary>
    [Test]
    public void AFreshLaunchInAReusedWorkDirKeepsNoEpochLengthOfTheLaunchBefore()
    {
        const string Training = "{{\"iter\": {0}, \"lr\": 0.01, \"loss\": 1.0, \"time\": 0.1, \"data_time\": 0.01, \"memory_mb\": 10{1}}}";
        string[] first = ["{\"iter\": 0, \"mode\": \"epoch_length\", \"iters_per_epoch\": 7, \"max_epochs\": 4}",
            string.Format(Training, 5, ", \"epoch\": 1"), string.Format(Training, 10, ", \"epoch\": 2"), string.Format(Training, 15, ", \"epoch\": 3")];

        var iterations = Path.Combine(Directory.CreateDirectory(Dir("iterations")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(iterations, [.. first, string.Format(Training, 5, ""), string.Format(Training, 10, ""), string.Format(Training, 20, "")]);
        var history = TrainingLogHistory.Read(iterations);
        Assert.That((history.Epochs, history.EpochEnds), Is.EqualTo(((EpochLength?)null, Array.Empty<int>())));
        Assert.That(File.ReadAllText(TrainingReport.Write(Dir("iterations"), Dir("iterations-report"))), Does.Not.Contain("epoch"));

        var epochs = Path.Combine(Directory.CreateDirectory(Dir("epochs")).FullName, TrainingLogWriter.LocalFileName);
        File.WriteAllLines(epochs, [.. first, "{\"iter\": 0, \"mode\": \"epoch_length\", \"iters_per_epoch\": 5, \"max_epochs\": 6}",
            string.Format(Training, 5, ", \"epoch\": 1"), string.Format(Training, 10, ", \"epoch\": 2"), string.Format(Training, 12, ", \"epoch\": 3")]);
        Assert.That(TrainingLogHistory.Read(epochs).EpochEnds, Is.EqualTo(new[] { 5, 10 }));
    }

    /// <summary>
    /// Twelve epochs are each labelled; 36 every 5th (12 or fewer labels: 36 / 2 = 18 is too many), each end drawn; 100 every
    /// 10th, lines every 2nd (50 ≤ 60).
    /// </summary>
    [Test]
    public void ManyEpochsAreLabelledAndDrawnThinned()
    {
        static List<int> Ends(int count) => Enumerable.Range(1, count).Select(e => e * 3).ToList();
        Assert.That(TrainingReport.EpochMarks(Ends(12)).Select(m => m.Label), Is.EqualTo(Enumerable.Range(1, 12).Select(e => $"ep {e}")));
        var thirtySix = TrainingReport.EpochMarks(Ends(36));
        Assert.That(thirtySix.Select(m => m.X), Is.EqualTo(Ends(36).Select(e => (double)e)));
        Assert.That(thirtySix.Where(m => m.Label is not null).Select(m => (m.X, m.Label)),
            Is.EqualTo(new[] { 5, 10, 15, 20, 25, 30, 35 }.Select(e => ((double)e * 3, (string?)$"ep {e}"))));
        var hundred = TrainingReport.EpochMarks(Ends(100));
        Assert.That(hundred.Select(m => m.X), Is.EqualTo(Enumerable.Range(1, 50).Select(e => e * 2 * 3.0)));
        Assert.That(hundred.Where(m => m.Label is not null).Select(m => m.Label), Is.EqualTo(Enumerable.Range(1, 10).Select(e => $"ep {e * 10}")));
    }

    /// <summary>
    /// `vim config show --resolved` on 10 demo images in batches of 2, 3 epochs from val_begin 2: ⌊10 / (2 × 2)⌋ = 2
    /// iterations an epoch on two processes (6 iterations, milestone 4, val_begin 4), ⌊10 / 2⌋ = 5 on one (15 iterations),
    /// as `vim config lr --processes K` counts; --processes 0 is refused.
    /// </summary>
    [Test]
    public void ConfigShowResolvedCountsTheEpochOnKProcesses()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = Dir("ade"), TrainImages = 10, ValImages = 2, Width = 48, Height = 48, Seed = 4 });
        var config = Path.Combine(_root, "epochs.yaml");
        File.WriteAllText(config, $"task: segmentation\nmodel:\n  num_classes: {DemoDatasetGenerator.ClassNames.Count}\ndata:\n  root: {Dir("ade")}\n  batch_size: 2\n  crop_size: [32, 32]\n  scale: [48, 48]\n" +
            "schedule:\n  max_iters: null\n  max_epochs: 3\n  policy: multistep\n  milestones: [2]\ntrain:\n  eval_interval: 1\n  checkpoint_interval: 1\n  val_begin: 2\n");
        Assert.That(ConfigCommand.Show(config, [], resolved: true, processes: 2), Does.EndWith(
            "# schedule.max_epochs 3 × 2 iterations per epoch (the training loader's, 2 processes) = 6 iterations\n" +
            "# in iterations: milestones [4], eval_interval 2, checkpoint_interval 2, val_begin 4\n"));
        Assert.That(ConfigCommand.Show(config, [], resolved: true), Does.EndWith(
            "# schedule.max_epochs 3 × 5 iterations per epoch (the training loader's, one process) = 15 iterations\n" +
            "# in iterations: milestones [10], eval_interval 5, checkpoint_interval 5, val_begin 10\n"));
        Assert.That(TrainingEpochs.IterationsPerEpoch(ExperimentConfig.Load(config).Config, 3), Is.EqualTo(1), "three processes: ⌊10 / 6⌋, through the count `vim config lr` takes");
        Assert.That(() => ConfigCommand.Show(config, [], resolved: true, processes: 0), Throws.TypeOf<VimException>().With.Message.StartsWith("--processes must be at least 1"));

        // A pipeline switch after epoch 1 of 2-iteration epochs (2 processes) first feeds iteration 2's batch through the switched pipeline.
        string[] switched = ["data.pipeline_switch={at: 1, train_pipeline: [{resize: {scales: [[16, 16]], keep_ratio: false}}, {normalize: {}}]}"];
        Assert.That(ConfigCommand.Show(config, switched, resolved: true, processes: 2), Does.EndWith(
            "# in iterations: milestones [4], eval_interval 2, checkpoint_interval 2, val_begin 4, pipeline_switch.at 2\n"));
        Assert.That(ConfigCommand.Show(config, switched, resolved: true), Does.EndWith("val_begin 10, pipeline_switch.at 5\n"));
    }

    /// <summary>
    /// Counting an epoch reads the training data, and a failure to read it is explained as such; a wrong setting on readable
    /// data is the config's error and reads as itself (it was reported as "the data under data.root … must be readable").
    /// The demo data is readable here: a cached mixup of 1 image (mmdet asserts at least 2) and a batch of 0 are the errors.
    /// </summary>
    [Test]
    public void ConfigShowResolvedReportsAWrongSettingAsItselfNotAsUnreadableData()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Dir("coco"), TrainImages = 6, ValImages = 2, Width = 48, Height = 48, Seed = 4 });
        var detection = Path.Combine(_root, "det_epochs.yaml");
        File.WriteAllText(detection, $"task: detection\nmodel:\n  num_classes: {DemoDatasetGenerator.ClassNames.Count}\ndata:\n  type: coco\n  root: {Dir("coco")}\n" +
            "  batch_size: 2\n  crop_size: [32, 32]\n  mixup: {cached: true, max_cached_images: 1}\nschedule:\n  max_iters: null\n  max_epochs: 2\n" +
            "  policy: multistep\n  milestones: [1]\ntrain:\n  eval_interval: 1\n  checkpoint_interval: 1\n");
        Assert.That(() => ConfigCommand.Show(detection, [], resolved: true), Throws.TypeOf<VimException>().With.Message.StartsWith(
            $"{detection}:9: data.mixup.max_cached_images must be at least 2 with cached: true"));

        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = Dir("ade"), TrainImages = 6, ValImages = 2, Width = 48, Height = 48, Seed = 4 });
        var segmentation = Path.Combine(_root, "seg_epochs.yaml");
        File.WriteAllText(segmentation, $"task: segmentation\nmodel:\n  num_classes: {DemoDatasetGenerator.ClassNames.Count}\ndata:\n  root: {Dir("ade")}\n  batch_size: 2\n" +
            "  crop_size: [32, 32]\n  scale: [48, 48]\nschedule:\n  max_iters: null\n  max_epochs: 2\n  policy: multistep\n  milestones: [1]\n" +
            "train:\n  eval_interval: 1\n  checkpoint_interval: 1\n");
        Assert.That(() => ConfigCommand.Show(segmentation, ["data.batch_size=0"], resolved: true), Throws.TypeOf<VimException>().With.Message.StartsWith(
            "data.batch_size must be at least 1"));
        // Data that is not there is still explained as what counting an epoch needs.
        Assert.That(() => ConfigCommand.Show(segmentation, [$"data.root={Dir("nowhere")}"], resolved: true), Throws.TypeOf<VimException>().With.Message.StartsWith(
            "schedule.max_epochs counts epochs of the training data"));
    }
}
