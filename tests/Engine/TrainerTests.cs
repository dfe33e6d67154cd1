using System.Security.Cryptography;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

public class TrainerTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-trainer-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>The toy task's training settings (shared with other trainer tests).</summary>
    internal static ExperimentConfig Config(int maxIters, double? ema = 0.9, int accumulate = 1) => new()
    {
        Optimizer = new OptimizerConfig { Lr = 0.01, WeightDecay = 0.01, GradClipNorm = 5.0 },
        Schedule = new ScheduleConfig { MaxIters = maxIters, Policy = LrPolicy.Poly, WarmupIters = 3, WarmupRatio = 0.1 },
        Train = new TrainConfig { LogInterval = 5, CheckpointInterval = 4, EvalInterval = 8, KeepLast = 2, EmaMomentum = ema, AccumulateSteps = accumulate },
        Runtime = new RuntimeConfig { Seed = 3 },
    };

    private string Dir(string name) => Path.Combine(_root, name);

    /// <summary>
    /// auto_scale_lr: 4 images per process × 1 process × 2 accumulated batches against a base of 32 scales optimizer.lr by
    /// 1/4, so lr 2⁻⁴ trains exactly as lr 2⁻⁶ does unscaled (powers of two: the products are exact).
    /// </summary>
    [Test]
    public void AutoScaleLrTrainsAsTheScaledRateAndSaysHowItWasReached()
    {
        set_num_threads(1);
        var reference = Config(8, accumulate: 2);
        reference.Data.BatchSize = 4;
        reference.Optimizer.Lr = 1.0 / 64;
        using var plain = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(plain, reference, Dir("plain"), "cfg", TextWriter.Null).Run(null);

        var scaled = Config(8, accumulate: 2);
        scaled.Data.BatchSize = 4;
        scaled.Optimizer.Lr = 1.0 / 16;
        scaled.AutoScaleLr = new AutoScaleLrConfig { Enable = true, BaseBatchSize = 32 };
        using var auto = new ToyRegressionTask();
        var console = new StringWriter();
        new Trainer<(Tensor, Tensor)>(auto, scaled, Dir("auto"), "cfg", console).Run(null);

        Assert.That(console.ToString(), Does.Contain(
            "auto_scale_lr: 8 images per optimiser step (4 per process × 1 process(es) × 2 accumulated), base_batch_size 32: lr 0.0625 × 0.25 = 0.015625"));
        Assert.That(auto.Weights(), Is.EqualTo(plain.Weights()));
        var logged = JsonLinesLog.Read(Path.Combine(Dir("auto"), "log.jsonl")).Where(r => r.Has("lr")).Select(r => r.Number("lr"));
        Assert.That(logged, Is.EqualTo(JsonLinesLog.Read(Path.Combine(Dir("plain"), "log.jsonl")).Where(r => r.Has("lr")).Select(r => r.Number("lr"))));
    }

    [Test]
    public void CrashThenResumeEndsWithBitwiseIdenticalWeights()
    {
        set_num_threads(1);
        using var straight = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(straight, Config(24), Dir("straight"), "cfg", TextWriter.Null).Run(null);

        // Crash on the 14th forward: checkpoints exist for iterations 4, 8 and 12 (the last two kept).
        using (var crashing = new ToyRegressionTask(failAtCall: 14))
            Assert.Throws<InvalidOperationException>(() =>
                new Trainer<(Tensor, Tensor)>(crashing, Config(24), Dir("resumed"), "cfg", TextWriter.Null).Run(null));
        var latest = new CheckpointDirectory(Dir("resumed"), 2).Latest();
        Assert.That(Path.GetFileName(latest), Is.EqualTo("iter_0000012.safetensors"));
        Assert.That(new CheckpointDirectory(Dir("resumed"), 2).Periodic().Select(Path.GetFileName),
            Is.EqualTo(new[] { "iter_0000012.safetensors", "iter_0000008.safetensors" }), "only the last K=2 are kept");

        using var resumed = new ToyRegressionTask();
        var result = new Trainer<(Tensor, Tensor)>(resumed, Config(24), Dir("resumed"), "cfg", TextWriter.Null).Run(latest);

        Assert.That(result.Iteration, Is.EqualTo(24));
        Assert.That(resumed.Weights(), Is.EqualTo(straight.Weights()), "bitwise identical to the uninterrupted run");
    }

    /// <summary>A resume given other settings than the checkpoint was trained with uses them and says which changed.</summary>
    [Test]
    public void AResumeWithChangedSettingsNamesThem()
    {
        const string first = "optimizer:\n  lr: 0.01\ndata:\n  root: /data/a\n";
        using (var task = new ToyRegressionTask())
            new Trainer<(Tensor, Tensor)>(task, Config(8), Dir("run"), first, TextWriter.Null).Run(null);
        var checkpoint = Path.Combine(Dir("run"), "iter_0000004.safetensors");
        foreach (var (yaml, expected) in new[]
        {
            (first, null),
            ("optimizer:\n  lr: 0.02\ndata:\n  root: /data/a\n", "note: the config differs from the checkpoint's; the new values apply: optimizer.lr: 0.01 → 0.02"),
        })
        {
            using var task = new ToyRegressionTask();
            var console = new StringWriter();
            new Trainer<(Tensor, Tensor)>(task, Config(8), Dir("run"), yaml, console).Run(checkpoint);
            var notes = console.ToString().Split('\n').Where(line => line.StartsWith("note: the config differs", StringComparison.Ordinal)).ToList();
            Assert.That(notes, expected is null ? Is.Empty : Is.EqualTo(new[] { expected }));
        }
    }

    [Test]
    public void InterruptWritesACheckpointAndResumeMatchesWithAccumulation()
    {
        set_num_threads(1);
        using var straight = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(straight, Config(16, ema: null, accumulate: 2), Dir("a"), "cfg", TextWriter.Null).Run(null);

        using var stop = new CancellationTokenSource();
        using var first = new ToyRegressionTask();
        var console = new StringWriter();
        // Cancel as soon as the first log line (iteration 5) appears: the trainer stops at the next accumulation boundary.
        var watcher = new CallbackWriter(console, line => { if (line.StartsWith("iter 5/", StringComparison.Ordinal)) stop.Cancel(); });
        var partial = new Trainer<(Tensor, Tensor)>(first, Config(16, ema: null, accumulate: 2), Dir("b"), "cfg", watcher).Run(null, stop.Token);
        Assert.That(partial.Interrupted, Is.True);
        Assert.That(partial.Iteration, Is.EqualTo(6));

        using var second = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(second, Config(16, ema: null, accumulate: 2), Dir("b"), "cfg", TextWriter.Null).Run(partial.LastCheckpoint);
        Assert.That(second.Weights(), Is.EqualTo(straight.Weights()));
    }

    [Test]
    public void NonFiniteLossStopsNamingIterationTermsAndLastCheckpoint()
    {
        using var task = new ToyRegressionTask(nanAtCall: 7);
        var e = Assert.Throws<VimException>(() => new Trainer<(Tensor, Tensor)>(task, Config(20), Dir("nan"), "cfg", TextWriter.Null).Run(null))!;
        Assert.That(e.Message, Does.Contain("iteration 6").And.Contain("loss_mse=NaN").And.Contain("loss_l1="));
        Assert.That(e.Message, Does.Contain("iter_0000004.safetensors"));
    }

    [Test]
    public void NonFiniteLossCanBeSkipped()
    {
        using var task = new ToyRegressionTask(nanAtCall: 7);
        var config = Config(12);
        config.Train.SkipNonFiniteLoss = true;
        var result = new Trainer<(Tensor, Tensor)>(task, config, Dir("skip"), "cfg", TextWriter.Null).Run(null);
        Assert.That(result.SkippedSteps, Is.EqualTo(1));
        Assert.That(task.Weights().All(float.IsFinite), Is.True);
    }

    [Test]
    public void UnwritableWorkDirFailsBeforeTraining()
    {
        var blocker = Path.Combine(_root, "a-file");
        File.WriteAllText(blocker, "");
        using var task = new ToyRegressionTask(failAtCall: 1);
        var e = Assert.Throws<VimException>(() =>
            new Trainer<(Tensor, Tensor)>(task, Config(4), Path.Combine(blocker, "work"), "cfg", TextWriter.Null).Run(null))!;
        Assert.That(e.Message, Does.Contain("not writable").And.Contain("a-file"));
    }

    [Test]
    public void CorruptCheckpointIsRefusedAndLeftUntouched()
    {
        using var task = new ToyRegressionTask();
        var result = new Trainer<(Tensor, Tensor)>(task, Config(4), Dir("c"), "cfg", TextWriter.Null).Run(null);
        var path = result.LastCheckpoint!;
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x40; // inside the last tensor's data
        File.WriteAllBytes(path, bytes);
        var hash = SHA256.HashData(bytes);

        using var again = new ToyRegressionTask();
        var e = Assert.Throws<VimException>(() => new Trainer<(Tensor, Tensor)>(again, Config(8), Dir("c"), "cfg", TextWriter.Null).Run(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("checksum mismatch"));
        Assert.That(SHA256.HashData(File.ReadAllBytes(path)), Is.EqualTo(hash));
    }

    [Test]
    public void CheckpointFromAnotherModelIsRefusedWithTheKey()
    {
        using var task = new ToyRegressionTask();
        var path = new Trainer<(Tensor, Tensor)>(task, Config(4, ema: null), Dir("d"), "cfg", TextWriter.Null).Run(null).LastCheckpoint!;
        using var other = new ToyRegressionTask();
        var e = Assert.Throws<VimException>(() => new Trainer<(Tensor, Tensor)>(other, Config(8, ema: 0.5), Dir("d2"), "cfg", TextWriter.Null).Run(path))!;
        Assert.That(e.Message, Does.Contain("EMA"));
    }

    [Test]
    public void AnUndefinedMetricIsLoggedAsNullAndNeverBecomesTheBest()
    {
        // Evaluations at 8, 16 and 24; the first reports NaN (mIoU of a split with no labelled pixel).
        using var task = new ToyRegressionTask(undefinedMetricAtEvaluation: 1);
        var result = new Trainer<(Tensor, Tensor)>(task, Config(24), Dir("nan"), "cfg", TextWriter.Null).Run(null);

        var evals = JsonLinesLog.Read(Path.Combine(Dir("nan"), "log.jsonl")).Where(r => r.IsEvaluation).ToList();
        Assert.That(evals.Select(r => r.Iteration), Is.EqualTo(new[] { 8, 16, 24 }));
        Assert.That(evals[0].Fields.GetProperty("neg_mse").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
        var defined = evals.Skip(1).MaxBy(r => r.Number("neg_mse"));
        Assert.That(result.BestMetric, Is.EqualTo(defined.Number("neg_mse")));
        using var best = Vim.Core.Checkpoints.CheckpointFile.Load(Path.Combine(Dir("nan"), "best.safetensors"));
        Assert.That(best.Metadata["iteration"], Is.EqualTo(defined.Iteration.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        // The report tables the undefined value as mmseg prints it.
        var report = File.ReadAllText(Vim.Data.Evaluation.Reports.TrainingReport.Write(Dir("nan"), Path.Combine(Dir("nan"), "report")));
        Assert.That(report, Does.Contain("| 8 | nan |"));
    }

    [Test]
    public void LogHasOneRecordPerIntervalWithEveryLossTermAndEvaluations()
    {
        using var task = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(task, Config(10), Dir("log"), "cfg", TextWriter.Null).Run(null);
        var records = JsonLinesLog.Read(Path.Combine(Dir("log"), "log.jsonl")).ToList();
        var train = records.Where(r => r.Mode is null).ToList();
        Assert.That(train.Select(r => r.Iteration), Is.EqualTo(new[] { 5, 10 }));
        foreach (var r in train)
        {
            double sum = r.Number("loss_mse") + r.Number("loss_l1");
            Assert.That(r.Number("loss"), Is.EqualTo(sum).Within(1e-9));
            Assert.That(r.Number("lr"), Is.GreaterThan(0));
        }
        var evals = records.Where(r => r.IsEvaluation).ToList();
        Assert.That(evals.Select(r => r.Iteration), Is.EqualTo(new[] { 8, 10 }));
        Assert.That(File.Exists(Path.Combine(Dir("log"), "best.safetensors")), Is.True);
    }

    [Test]
    public void TermsWithoutLossInTheirNameAreLoggedButNotMinimised()
    {
        // As mmengine's parse_losses: max_error (not detached) is logged, and neither in the total nor in the objective:
        // the weights are those of a run without it.
        using var plain = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(plain, Config(10), Dir("plain"), "cfg", TextWriter.Null).Run(null);
        using var logging = new ToyRegressionTask { LogsMaxError = true };
        new Trainer<(Tensor, Tensor)>(logging, Config(10), Dir("stat"), "cfg", TextWriter.Null).Run(null);
        Assert.That(logging.Weights(), Is.EqualTo(plain.Weights()));
        foreach (var r in JsonLinesLog.Read(Path.Combine(Dir("stat"), "log.jsonl")).Where(r => r.Mode is null))
        {
            Assert.That(r.Number("max_error"), Is.GreaterThan(0));
            Assert.That(r.Number("loss"), Is.EqualTo(r.Number("loss_mse") + r.Number("loss_l1")).Within(1e-9));
        }
    }

    [Test]
    public void LoggedTimesAreMeansOverTheInterval()
    {
        // The first iteration of each two-iteration interval sleeps 80 ms: the interval's mean is at least 40 ms, however
        // fast the machine; a record holding only its own (second) iteration's time would show a few milliseconds.
        using var task = new ToyRegressionTask(delayAtCall: call => call % 2 == 1 ? TimeSpan.FromMilliseconds(80) : TimeSpan.Zero);
        var config = Config(4);
        config.Train.LogInterval = 2;
        new Trainer<(Tensor, Tensor)>(task, config, Dir("times"), "cfg", TextWriter.Null).Run(null);
        var train = JsonLinesLog.Read(Path.Combine(Dir("times"), "log.jsonl")).Where(r => r.Mode is null).ToList();
        Assert.That(train.Select(r => r.Iteration), Is.EqualTo(new[] { 2, 4 }));
        foreach (var r in train) Assert.That(r.Number("time"), Is.GreaterThanOrEqualTo(0.04), $"iteration {r.Iteration}");
    }

    [Test]
    public void AResumeIsMarkedInTheLogAndItsReportLeavesOutTheAbandonedRecords()
    {
        using (var crashing = new ToyRegressionTask(failAtCall: 19))
            Assert.Throws<InvalidOperationException>(() =>
                new Trainer<(Tensor, Tensor)>(crashing, Config(24), Dir("marked"), "cfg", TextWriter.Null).Run(null));
        var log = Path.Combine(Dir("marked"), "log.jsonl");
        Assert.That(JsonLinesLog.Read(log).Where(r => r.Mode is null).Max(r => r.Iteration), Is.EqualTo(15), "logged every 5 iterations up to the crash");
        // Checkpoints 12 and 16 are kept; resuming from the older one, the records of 15 and the evaluation at 16 are
        // left behind. The resumed launch is stopped at once (a stop requested before it starts), before it logs anything.
        var checkpoint = new CheckpointDirectory(Dir("marked"), 2).PathFor(12);
        using (var resumed = new ToyRegressionTask())
        {
            using var stop = new CancellationTokenSource();
            stop.Cancel();
            var result = new Trainer<(Tensor, Tensor)>(resumed, Config(24), Dir("marked"), "cfg", TextWriter.Null).Run(checkpoint, stop.Token);
            Assert.That((result.Interrupted, result.Iteration), Is.EqualTo((true, 12)));
        }
        var resume = JsonLinesLog.Read(log).Single(r => r.Mode == TrainingLogModes.Resume);
        Assert.That(resume.Iteration, Is.EqualTo(12));
        Assert.That(JsonLinesLog.Read(log).Where(r => r.IsEvaluation).Select(r => r.Iteration), Is.EqualTo(new[] { 8, 16 }));
        var history = TrainingLogHistory.Read(log);
        Assert.That(history.Training.Select(i => i.Record.Iteration), Is.EqualTo(new[] { 5, 10 }), "15 came from the abandoned launch");
        Assert.That(history.Evaluations.Select(r => r.Iteration), Is.EqualTo(new[] { 8 }), "no checkpoint holds the weights evaluated at 16");
        Assert.That(history.Restarts, Is.EqualTo(new[] { 12 }));
    }

    [Test]
    public void LiveTensorCountStaysFlatOverManyIterations()
    {
        using var task = new ToyRegressionTask();
        var config = Config(400);
        config.Train.CheckpointInterval = 1000;
        config.Train.EvalInterval = 1000;
        config.Train.LogInterval = 100;
        new Trainer<(Tensor, Tensor)>(task, config, Dir("mem"), "cfg", TextWriter.Null).Run(null);
        // Every per-step tensor (batch, activations, losses, gradients' temporaries) must be disposed:
        // the live count seen at the start of step 50 and of step 400 must be the same.
        var counts = task.LiveTensorCounts;
        Assert.That(counts, Has.Count.EqualTo(400));
        Assert.That(counts[399], Is.EqualTo(counts[49]), $"live tensors grew from {counts[49]} to {counts[399]}");
    }

    private sealed class CallbackWriter(TextWriter inner, Action<string> onLine) : TextWriter
    {
        public override System.Text.Encoding Encoding => inner.Encoding;

        public override void WriteLine(string? value)
        {
            inner.WriteLine(value);
            onLine(value ?? "");
        }
    }
}
