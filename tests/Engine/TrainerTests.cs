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

    /// <summary>The toy task's schedule: logs every 5 iterations, checkpoints every 4 (the last 2 kept), evaluates every 8.</summary>
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
    public void SeveralProcessesLogTheTermsInTheTasksOrderAsOneProcessDoes()
    {
        // The toy task returns loss_mse before loss_l1, the reverse of their sorted order, in which the ranks reduce them.
        using var single = new ToyRegressionTask();
        var singleConsole = new StringWriter();
        new Trainer<(Tensor, Tensor)>(single, Config(5), Dir("single"), "cfg", singleConsole).Run(null);
        using var ranked = new ToyRegressionTask();
        var rankedConsole = new StringWriter();
        new Trainer<(Tensor, Tensor)>(ranked, Config(5), Dir("ranked"), "cfg", rankedConsole, new TwinRanks()).Run(null);

        foreach (var (dir, console) in new[] { ("single", singleConsole), ("ranked", rankedConsole) })
        {
            var record = File.ReadLines(Path.Combine(Dir(dir), "log.jsonl")).Single(l => l.Contains("\"iter\":5,", StringComparison.Ordinal) && !l.Contains("\"mode\"", StringComparison.Ordinal));
            Assert.That(record.IndexOf("\"loss_mse\"", StringComparison.Ordinal), Is.LessThan(record.IndexOf("\"loss_l1\"", StringComparison.Ordinal)), $"{dir}: {record}");
            var progress = console.ToString().Split('\n').Single(l => l.StartsWith("iter 5/5", StringComparison.Ordinal));
            Assert.That(progress.IndexOf("loss_mse", StringComparison.Ordinal), Is.LessThan(progress.IndexOf("loss_l1", StringComparison.Ordinal)), $"{dir}: {progress}");
        }
    }

    /// <summary>Rank 0 of two ranks that compute the same thing: a sum over ranks is twice this rank's value.</summary>
    private sealed class TwinRanks : Vim.Core.Distributed.ICommunicator
    {
        public int Rank => 0;
        public int WorldSize => 2;
        public TimeSpan Timeout => TimeSpan.FromSeconds(10);
        public void AllReduceSum(Tensor tensor) => tensor.mul_(2);
        public void Broadcast(Tensor tensor, int root = 0) { }
        public void Barrier() { }
        public IReadOnlyList<byte[]> AllGather(byte[] data) => [data, data];
        public IReadOnlyList<byte[]> Gather(byte[] data, int root = 0) => [data, data];
        public void Dispose() { }
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
    public void AnUndefinedStatisticIsAveragedOverTheIterationsThatDefinedItAndKeptOffTheProgressLine()
    {
        // Intervals of two iterations: (NaN, 0.2) logs 0.2, not the NaN a plain mean gives nor the 0.1 of dividing by the
        // interval's length; (NaN, NaN) defines nothing, so the record has no such field (detectron2 records no scalar then).
        float[] values = [float.NaN, 0.2f, float.NaN, float.NaN, 0.25f, 0.75f];
        using var task = new ToyRegressionTask { StatisticAtCall = call => values[call - 1] };
        var config = Config(6);
        config.Train.LogInterval = 2;
        var console = new StringWriter();
        new Trainer<(Tensor, Tensor)>(task, config, Dir("undefined"), "cfg", console).Run(null);
        var train = JsonLinesLog.Read(Path.Combine(Dir("undefined"), "log.jsonl")).Where(r => r.Mode is null).ToList();
        Assert.That(train.Select(r => r.Iteration), Is.EqualTo(new[] { 2, 4, 6 }));
        Assert.That(train[0].Number("toy/statistic"), Is.EqualTo(0.2).Within(1e-7));
        Assert.That(train[1].Has("toy/statistic"), Is.False);
        Assert.That(train[2].Number("toy/statistic"), Is.EqualTo(0.5).Within(1e-7));
        foreach (var r in train) Assert.That(r.Number("loss"), Is.EqualTo(r.Number("loss_mse") + r.Number("loss_l1")).Within(1e-9), "no statistic in the loss");
        var progress = console.ToString().Split('\n').Where(l => l.Contains("iter 2/6", StringComparison.Ordinal)).ToList();
        Assert.That(progress, Has.Count.EqualTo(1));
        Assert.That(progress[0], Does.Contain("loss_mse").And.Not.Contain("toy/statistic"), "a '/' statistic is for log.jsonl, not the progress line");
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

    /// <summary>
    /// lr_mult 0 freezes (mmdet's frozen stages): the toy's embedding ends bit-identical to its initial weights, gets no
    /// gradient and is in no optimiser group, while the rest trains; the log says what was frozen.
    /// </summary>
    [Test]
    public void ACustomKeyWithLrMultZeroFreezesItsParameters()
    {
        set_num_threads(1);
        var config = Config(8, ema: null);
        config.Optimizer.CustomKeys["patch_embed"] = new CustomKeyConfig { LrMult = 0 };
        using var task = new ToyRegressionTask(dropout: 0, layered: true);
        var before = task.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        IReadOnlyList<string>? optimised = null;
        var console = new StringWriter();
        var trainer = new Trainer<(Tensor, Tensor)>(task, config, Dir("frozen"), "cfg", console)
        {
            AfterOptimizerStep = (_, optimizer) => optimised ??= optimizer.Groups.SelectMany(g => g.Parameters.Select(p => p.Name)).ToList(),
        };
        trainer.Run(null);
        foreach (var (name, parameter) in task.Model.named_parameters())
        {
            bool frozen = name.StartsWith("patch_embed.", StringComparison.Ordinal);
            Assert.That(parameter.requires_grad, Is.Not.EqualTo(frozen), name);
            Assert.That(parameter.eq(before[name]).all().item<bool>(), Is.EqualTo(frozen), name);
        }
        Assert.That(optimised, Is.EquivalentTo(before.Keys.Where(n => !n.StartsWith("patch_embed.", StringComparison.Ordinal))));
        Assert.That(console.ToString(), Does.Contain("optimizer.custom_keys: 2 parameters frozen (lr_mult 0), e.g. patch_embed.weight, patch_embed.bias"));
    }

    /// <summary>
    /// With optimizer.grad_clip_norm the log carries grad_norm, as mmengine logs it where it clips: here the mean, over each
    /// logging interval, of the global L2 norm of the gradients each step clipped, recomputed from the gradients themselves.
    /// </summary>
    [Test]
    public void ClippingRunsLogTheMeanGradientNormOfEachInterval()
    {
        set_num_threads(1);
        var config = Config(10, ema: null);
        config.Optimizer.GradClipNorm = 1e9;
        using var task = new ToyRegressionTask(dropout: 0);
        var norms = new List<double>();
        var trainer = new Trainer<(Tensor, Tensor)>(task, config, Dir("gradnorm"), "cfg", TextWriter.Null)
        {
            // After the step the gradients are still there (zeroed next); a bound of 1e9 leaves them unclipped.
            AfterOptimizerStep = (_, optimizer) => norms.Add(Math.Sqrt(optimizer.Groups.SelectMany(g => g.Parameters)
                .Sum(p => p.Parameter.grad!.to_type(ScalarType.Float64).square().sum().item<double>()))),
        };
        trainer.Run(null);
        var logged = JsonLinesLog.Read(Path.Combine(Dir("gradnorm"), "log.jsonl")).Where(r => r.Has("loss")).ToList();
        Assert.That(logged.Select(r => (int)r.Number("iter")), Is.EqualTo(new[] { 5, 10 }));
        Assert.That(norms, Has.Count.EqualTo(10).And.All.GreaterThan(0));
        Assert.That(logged[0].Number("grad_norm"), Is.EqualTo(norms.Take(5).Average()).Within(1e-5).Percent);
        Assert.That(logged[1].Number("grad_norm"), Is.EqualTo(norms.Skip(5).Average()).Within(1e-5).Percent);

        config.Optimizer.GradClipNorm = null;
        using var unclipped = new ToyRegressionTask(dropout: 0);
        new Trainer<(Tensor, Tensor)>(unclipped, config, Dir("noclip"), "cfg", TextWriter.Null).Run(null);
        Assert.That(JsonLinesLog.Read(Path.Combine(Dir("noclip"), "log.jsonl")).Where(r => r.Has("loss")).Any(r => r.Has("grad_norm")), Is.False);
    }
}
