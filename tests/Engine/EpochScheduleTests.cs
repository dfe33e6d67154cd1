using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// schedule.max_epochs (MMEngine's EpochBasedTrainLoop): epoch-counted milestones and intervals in iterations, worked out
/// by hand; the toy trainer (32 samples in batches of 4: 8 iterations an epoch) evaluating, checkpointing and logging at
/// epoch ends, resuming mid-epoch to the bit, refusing a resume whose epoch changed, and stopping early by evaluations;
/// the refusals naming their keys.
/// </summary>
public class EpochScheduleTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-epochs-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Dir(string name) => Path.Combine(_root, name);

    /// <summary>mmdet's 1x shape on the toy: multistep ×0.1 at the milestones, no warmup (so the lr is the policy's alone).</summary>
    private static ExperimentConfig EpochConfig(int maxEpochs, List<int> milestones, int evalInterval = 1, int checkpointInterval = 1) => new()
    {
        Optimizer = new OptimizerConfig { Lr = 0.01, WeightDecay = 0.01 },
        Schedule = new ScheduleConfig { MaxEpochs = maxEpochs, Policy = LrPolicy.Multistep, Milestones = milestones, Gamma = 0.1, WarmupIters = 0 },
        Train = new TrainConfig { LogInterval = 4, EvalInterval = evalInterval, CheckpointInterval = checkpointInterval, KeepLast = 5 },
        Runtime = new RuntimeConfig { Seed = 3 },
    };

    /// <summary>
    /// 12 epochs of 7 iterations with milestones [8, 11], evaluations every epoch and checkpoints every 2: 84 iterations,
    /// milestones at 56 and 77, intervals 7 and 14 (MMEngine's convert_to_iter_based: epoch e → e × 7). Warmup and the log
    /// interval stay iterations.
    /// </summary>
    [Test]
    public void EpochCountedSettingsBecomeTheHandComputedIterations()
    {
        var config = EpochConfig(12, [8, 11], evalInterval: 1, checkpointInterval: 2);
        config.Schedule.WarmupIters = 5;
        var length = EpochSchedule.Resolve(config, iterationsPerEpoch: 7);

        Assert.That(length.MaxIters, Is.EqualTo(84));
        Assert.That(length.MaxEpochs, Is.EqualTo(12));
        Assert.That(length.IterationsPerEpoch, Is.EqualTo(7));
        Assert.That(length.Config.Schedule.MaxEpochs, Is.Null);
        Assert.That(length.Config.Schedule.Milestones, Is.EqualTo(new[] { 56, 77 }));
        Assert.That(length.Config.Train.EvalInterval, Is.EqualTo(7));
        Assert.That(length.Config.Train.CheckpointInterval, Is.EqualTo(14));
        Assert.That(length.Config.Schedule.WarmupIters, Is.EqualTo(5), "warmup counts iterations, as mmdet's LinearLR with by_epoch=False");
        Assert.That(length.Config.Train.LogInterval, Is.EqualTo(4));
        Assert.That(config.Schedule.Milestones, Is.EqualTo(new[] { 8, 11 }), "the given config is left as it was");
        // Iteration 7 (1-based) is the last of epoch 1, 8 the first of epoch 2.
        Assert.That(length.EpochAfter(7), Is.EqualTo((1, 7)));
        Assert.That(length.EpochAfter(8), Is.EqualTo((2, 1)));
        Assert.That(length.EpochAfter(84), Is.EqualTo((12, 7)));

        // The lr drops at the first iteration of epochs 9 and 12 (0-based iterations 56 and 77), after warmup's 5.
        var schedule = new LrSchedule(length.Config.Schedule);
        Assert.That(schedule.LrAt(1.0, 0), Is.EqualTo(1e-6), "warmup from warmup_ratio × lr");
        Assert.That(schedule.LrAt(1.0, 55), Is.EqualTo(1.0));
        Assert.That(schedule.LrAt(1.0, 56), Is.EqualTo(0.1).Within(1e-15));
        Assert.That(schedule.LrAt(1.0, 76), Is.EqualTo(0.1).Within(1e-15));
        Assert.That(schedule.LrAt(1.0, 77), Is.EqualTo(0.01).Within(1e-15));
        Assert.That(() => new LrSchedule(config.Schedule), Throws.InstanceOf<InvalidOperationException>().With.Message.Contains("max_epochs"),
            "an unresolved epoch-counted schedule is never read as iterations");
    }

    /// <summary>
    /// Three epochs of 8 iterations (32 samples, batch 4), milestone at epoch 2, evaluations every epoch, checkpoints every
    /// 2 epochs: evaluations at iterations 8, 16, 24 (epochs 1–3), checkpoints at 16 and 24 (the end), the lr the optimiser
    /// applied 0.01 up to iteration 15 and 0.001 from 16, and log records and progress lines carrying the epoch.
    /// </summary>
    [Test]
    public void TheToyRunEvaluatesCheckpointsAndDropsTheLrAtEpochEnds()
    {
        set_num_threads(1);
        var config = EpochConfig(3, [2], evalInterval: 1, checkpointInterval: 2);
        using var task = new ToyRegressionTask(dropout: 0);
        var applied = new Dictionary<int, double>();
        var console = new StringWriter();
        var result = new Trainer<(Tensor, Tensor)>(task, config, Dir("run"), "cfg", console)
        {
            AfterOptimizerStep = (iteration, optimizer) => applied[iteration] = optimizer.GroupLrs[0],
        }.Run(null);

        Assert.That(result.Iteration, Is.EqualTo(24));
        Assert.That(applied.Keys, Is.EqualTo(Enumerable.Range(0, 24)));
        Assert.That(Enumerable.Range(0, 16).Select(i => applied[i]), Is.All.EqualTo(0.01));
        Assert.That(Enumerable.Range(16, 8).Select(i => applied[i]), Is.All.EqualTo(0.01 * 0.1).Within(1e-15));

        var log = JsonLinesLog.Read(Path.Combine(Dir("run"), "log.jsonl"));
        var evaluations = log.Where(r => r.Text("mode") == TrainingLogModes.Evaluation).ToList();
        Assert.That(evaluations.Select(r => r.Iteration), Is.EqualTo(new[] { 8, 16, 24 }));
        Assert.That(evaluations.Select(r => r.Number("epoch")), Is.EqualTo(new[] { 1.0, 2.0, 3.0 }));
        var intervals = log.Where(r => r.Has("lr")).ToList();
        Assert.That(intervals.Select(r => r.Iteration), Is.EqualTo(new[] { 4, 8, 12, 16, 20, 24 }), "train.log_interval stays in iterations");
        Assert.That(intervals.Select(r => r.Number("epoch")), Is.EqualTo(new[] { 1.0, 1, 2, 2, 3, 3 }));
        Assert.That(new CheckpointDirectory(Dir("run"), 5).Periodic().Select(Path.GetFileName),
            Is.EqualTo(new[] { "iter_0000024.safetensors", "iter_0000016.safetensors" }));

        var text = console.ToString();
        Assert.That(text, Does.Contain("schedule.max_epochs 3: 8 iterations per epoch (4 × 1 process(es) per iteration), 24 iterations; " +
            "milestones at iterations [16], evaluations every 8 iterations, checkpoints every 16 iterations"));
        var progress = text.Split('\n').Where(l => l.StartsWith("Epoch(train)", StringComparison.Ordinal)).Select(l => l[..l.IndexOf(" | loss", StringComparison.Ordinal)]);
        Assert.That(progress, Is.EqualTo(new[]
        {
            "Epoch(train) [1/3][4/8] | iter 4/24", "Epoch(train) [1/3][8/8] | iter 8/24", "Epoch(train) [2/3][4/8] | iter 12/24",
            "Epoch(train) [2/3][8/8] | iter 16/24", "Epoch(train) [3/3][4/8] | iter 20/24", "Epoch(train) [3/3][8/8] | iter 24/24",
        }));
        Assert.That(text, Does.Contain("eval @ 16 (epoch 2): neg_mse"));

        // `vim report` keeps iterations on its axes: the records' epoch is neither a loss, a training statistic nor a metric.
        var report = Vim.Data.Evaluation.Reports.TrainingReport.Write(Dir("run"), Dir("report"));
        Assert.That(Vim.Data.Evaluation.Reports.TrainingReport.StatisticTerms(["epoch", "loss_mse", "max_error"]), Is.EqualTo(new[] { "max_error" }));
        Assert.That(File.Exists(Path.Combine(Dir("report"), "train_statistics.png")), Is.False, "the toy logs no statistic but the epoch");
        Assert.That(File.ReadAllText(report), Does.Contain("| iteration | neg_mse |"), "the metrics table has no epoch column");
    }

    /// <summary>
    /// Interrupted after iteration 12, half-way through epoch 2 (data position: epoch index 1, sample 16), the run resumes
    /// and ends with the weights of the uninterrupted run to the bit; resumed with batches of 2 instead (16 iterations an
    /// epoch, which puts iteration 12 in epoch 1), it is refused, naming the changed epoch.
    /// </summary>
    [Test]
    public void AResumeMidEpochMatchesTheUninterruptedRunAndAChangedEpochIsRefused()
    {
        set_num_threads(1);
        var config = EpochConfig(3, [2]);
        using var straight = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(straight, config, Dir("straight"), "cfg", TextWriter.Null).Run(null);

        using var stop = new CancellationTokenSource();
        TrainingResult partial;
        using (var first = new ToyRegressionTask())
            partial = new Trainer<(Tensor, Tensor)>(first, config, Dir("resumed"), "cfg", TextWriter.Null)
            {
                AfterOptimizerStep = (iteration, _) => { if (iteration == 11) stop.Cancel(); },
            }.Run(null, stop.Token);
        Assert.That(partial.Interrupted, Is.True);
        Assert.That(partial.Iteration, Is.EqualTo(12));
        var checkpoint = partial.LastCheckpoint!;

        using (var smallerBatches = new ToyRegressionTask(batchSize: 2))
        {
            var e = Assert.Throws<VimException>(() =>
                new Trainer<(Tensor, Tensor)>(smallerBatches, config, Dir("resumed"), "cfg", TextWriter.Null).Run(checkpoint))!;
            Assert.That(e.Message, Does.Contain($"--resume {checkpoint}: the checkpoint's iteration 12 stands at sample 16 of data epoch 2"));
            Assert.That(e.Message, Does.Contain("an epoch of this run is 16 iterations of 2 samples"));
            Assert.That(e.Message, Does.Contain("the epoch length changed since the checkpoint"));
        }

        using var resumed = new ToyRegressionTask();
        var console = new StringWriter();
        var result = new Trainer<(Tensor, Tensor)>(resumed, config, Dir("resumed"), "cfg", console).Run(checkpoint);
        Assert.That(result.Iteration, Is.EqualTo(24));
        Assert.That(resumed.Weights(), Is.EqualTo(straight.Weights()), "bitwise identical to the uninterrupted run");
        Assert.That(console.ToString(), Does.Contain("Epoch(train) [2/3][8/8] | iter 16/24"), "the resumed run goes on counting epoch 2");
    }

    /// <summary>
    /// train.early_stopping counts evaluations, whatever their unit: with patience 1 and a metric that falls at the second
    /// evaluation (the end of epoch 2), a 4-epoch run stops there, at iteration 16, with a checkpoint.
    /// </summary>
    [Test]
    public void EarlyStoppingCountsEpochEvaluations()
    {
        set_num_threads(1);
        var config = EpochConfig(4, [3]);
        config.Train.EarlyStopping = new EarlyStoppingConfig { Patience = 1 };
        using var task = new ToyRegressionTask
        {
            MetricsAtEvaluation = n => new Dictionary<string, double> { ["neg_mse"] = n == 1 ? -1.0 : -2.0 },
        };
        var result = new Trainer<(Tensor, Tensor)>(task, config, Dir("early"), "cfg", TextWriter.Null).Run(null);
        Assert.That(result.EarlyStop, Is.Not.Null);
        Assert.That(result.Iteration, Is.EqualTo(16));
        Assert.That(result.LastCheckpoint, Does.EndWith("iter_0000016.safetensors"));
    }

    /// <summary>
    /// An epoch of 7 iterations cannot end on an optimiser step of 2 accumulated batches; a resolved setting overflowing an
    /// int is refused too; an epoch-counted config with an inherited iteration milestone or interval names each such key.
    /// </summary>
    [Test]
    public void SettingsThatCannotCountEpochsAreRefusedByName()
    {
        var accumulating = EpochConfig(2, [1]);
        accumulating.Train.AccumulateSteps = 2;
        Assert.That(() => EpochSchedule.Resolve(accumulating, 7), Throws.TypeOf<VimException>().With.Message.Contains(
            "schedule.max_epochs: an epoch of the training data is 7 iterations, not a multiple of train.accumulate_steps (2)"));
        Assert.That(EpochSchedule.Resolve(accumulating, 8).Config.Train.EvalInterval, Is.EqualTo(8));

        Assert.That(() => EpochSchedule.Resolve(EpochConfig(3000, [1]), 1_000_000), Throws.TypeOf<VimException>().With.Message.Contains(
            "schedule.max_epochs: 3000 epochs of 1000000 iterations are 3000000000 iterations"));

        // mmdet's detection base schedule in iterations under max_epochs 12.
        var inherited = EpochConfig(12, [163889, 177546], evalInterval: 5000, checkpointInterval: 5000);
        var e = Assert.Throws<VimException>(() => TrainingSettings.Check(inherited))!;
        Assert.That(e.Message, Does.StartWith("schedule.max_epochs is 12, so these settings count epochs, and exceed it"));
        Assert.That(e.Message, Does.Contain("schedule.milestones [163889, 177546]"));
        Assert.That(e.Message, Does.Contain("train.eval_interval 5000"));
        Assert.That(e.Message, Does.Contain("train.checkpoint_interval 5000"));

        var zero = EpochConfig(1, []);
        zero.Schedule.MaxEpochs = 0;
        Assert.That(() => TrainingSettings.Check(zero), Throws.TypeOf<VimException>().With.Message.EqualTo("schedule.max_epochs must be at least 1, got 0"));

        var both = EpochConfig(12, [8, 11]);
        both.Schedule.MaxIters = 1000;
        Assert.That(() => TrainingSettings.Check(both), Throws.TypeOf<VimException>().With.Message.StartsWith(
            "schedule.max_iters 1000 and schedule.max_epochs 12 both set the run's length; keep one"));
    }

    /// <summary>
    /// A child config setting max_epochs over a base that sets max_iters is refused, naming both files and lines; with the
    /// base's length cleared (--set schedule.max_iters=null) it loads, counts epochs and writes config.yaml with max_iters null,
    /// which loads again.
    /// </summary>
    [Test]
    public void MaxItersAndMaxEpochsAcrossABaseAndItsChildAreRefusedNamingWhere()
    {
        File.WriteAllText(Path.Combine(_root, "base.yaml"), "schedule:\n  policy: multistep\n  max_iters: 90000\n");
        var child = Path.Combine(_root, "child.yaml");
        File.WriteAllText(child, "_base_: base.yaml\nschedule:\n  max_epochs: 12\n  milestones: [8, 11]\ntrain:\n  eval_interval: 1\n  checkpoint_interval: 1\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(child))!;
        Assert.That(e.Message, Does.StartWith(
            $"schedule.max_iters 90000 ({Path.Combine(_root, "base.yaml")}:3) and schedule.max_epochs 12 ({child}:3) both set the run's length"));
        Assert.That(e.Message, Does.Contain("--set schedule.max_iters=null"));

        var overridden = Assert.Throws<VimException>(() => ExperimentConfig.Load(child, ["schedule.max_epochs=null", "schedule.max_iters=10", "schedule.max_epochs=3"]))!;
        Assert.That(overridden.Message, Does.Contain("schedule.max_epochs 3 (--set schedule.max_epochs=3)"));

        var (config, _) = ExperimentConfig.Load(child, ["schedule.max_iters=null"]);
        Assert.That(config.Schedule.MaxIters, Is.Null);
        Assert.That(config.Schedule.MaxEpochs, Is.EqualTo(12));
        TrainingSettings.Check(config);
        var saved = Path.Combine(_root, "config.yaml");
        File.WriteAllText(saved, ConfigWriter.ToYaml(ConfigBinder.ToNode(config)));
        Assert.That(ExperimentConfig.Load(saved).Config.Schedule.MaxEpochs, Is.EqualTo(12), "a work dir's config.yaml spells out max_iters: null");
    }
}
