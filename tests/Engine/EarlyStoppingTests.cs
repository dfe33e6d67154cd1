using System.Globalization;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Evaluation.Reports;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// train.early_stopping (MMEngine's EarlyStoppingHook) on the toy task, whose metrics follow a course laid out in advance
/// (<see cref="ToyRegressionTask.MetricsAtEvaluation"/>). The toy schedule of <see cref="TrainerTests.Config"/> evaluates
/// every 8 iterations, so evaluation n is at iteration 8n: each expected stop below is worked out from the course by hand.
/// </summary>
public class EarlyStoppingTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-earlystop-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Dir(string name) => Path.Combine(_root, name);

    private static ExperimentConfig Config(int maxIters, EarlyStoppingConfig stopping)
    {
        var config = TrainerTests.Config(maxIters);
        config.Train.EarlyStopping = stopping;
        return config;
    }

    /// <summary>neg_mse at evaluation n is <paramref name="course"/>[n − 1]; an evaluation past its end fails the test (the run should have stopped).</summary>
    private static Func<int, IReadOnlyDictionary<string, double>> Course(params double[] course) => n => new Dictionary<string, double>
    {
        ["neg_mse"] = n <= course.Length ? course[n - 1] : throw new InvalidOperationException($"evaluation {n} is past the course laid out for the test"),
    };

    private static TrainingResult Train(ToyRegressionTask task, ExperimentConfig config, string dir, TextWriter? console = null, string? resume = null) =>
        new Trainer<(Tensor, Tensor)>(task, config, dir, "cfg", console ?? TextWriter.Null).Run(resume);

    /// <summary>
    /// patience 3 over the course −5, −4, −3, −3, −3.5, −3.2 (evaluations at 8 … 48): −3 at 24 is the best; the equal −3 at 32
    /// is no improvement (strictly better is required, a departure from MMEngine), nor are −3.5 and −3.2, so the third of
    /// them, at 48, stops the run, before the improving −1 that would come at 56. The stop writes a checkpoint at 48 (no
    /// periodic one falls there), flushes the losses since 45, logs why (log.jsonl, TensorBoard's text summary), prints it,
    /// returns it, and `vim report` says so.
    /// </summary>
    [Test]
    public void AMetricThatPlateausStopsTheRunAfterPatienceEvaluationsWithoutImprovement()
    {
        var config = Config(80, new EarlyStoppingConfig { Patience = 3 });
        config.Train.CheckpointInterval = 20;
        config.Runtime.VisBackends = [VisBackend.Local, VisBackend.Tensorboard];
        var console = new StringWriter();
        using var task = new ToyRegressionTask { MetricsAtEvaluation = Course(-5, -4, -3, -3, -3.5, -3.2, -1) };
        var result = Train(task, config, Dir("run"), console);

        Assert.That((result.Iteration, result.Interrupted, result.BestMetric), Is.EqualTo((48, false, -3.0)));
        Assert.That(result.EarlyStop, Is.EqualTo(new EarlyStop(48, EarlyStopReason.NoImprovement, "neg_mse", EarlyStoppingRule.Greater, -3.2, -3, 3, 3, 0, null)));
        var checkpoint = Path.Combine(Dir("run"), "iter_0000048.safetensors");
        Assert.That(result.LastCheckpoint, Is.EqualTo(checkpoint));
        Assert.That(new CheckpointDirectory(Dir("run"), 2).Latest(), Is.EqualTo(checkpoint));
        using (var file = CheckpointFile.Load(checkpoint))
            Assert.That((file.Metadata["iteration"], file.Metadata["early_stopping_best"], file.Metadata["early_stopping_evaluations_without_improvement"]),
                Is.EqualTo(("48", "-3", "3")));
        using (var best = CheckpointFile.Load(Path.Combine(Dir("run"), "best.safetensors")))
            Assert.That(best.Metadata["iteration"], Is.EqualTo("24"), "the equal −3 at 32 is no new best either");

        const string message = "neg_mse has not improved on its best -3 by more than min_delta 0 for 3 evaluations (patience 3); the last was -3.2";
        Assert.That(console.ToString(), Does.Contain($"early stopping at iteration 48 of 80: {message}; checkpoint {checkpoint}"));
        var records = JsonLinesLog.Read(Path.Combine(Dir("run"), TrainingLogWriter.LocalFileName)).ToList();
        Assert.That(records.Where(r => r.IsEvaluation).Select(r => r.Iteration), Is.EqualTo(new[] { 8, 16, 24, 32, 40, 48 }));
        Assert.That(records.Where(r => r.Mode is null).Select(r => r.Iteration), Is.EqualTo(new[] { 5, 10, 15, 20, 25, 30, 35, 40, 45, 48 }));
        var stop = records[^1];
        Assert.That((stop.Iteration, stop.Mode, stop.Text("reason"), stop.Text("monitor"), stop.Text("message"), stop.Text("checkpoint")),
            Is.EqualTo((48, "early_stop", "no_improvement", "neg_mse", message, checkpoint)));
        Assert.That((stop.Number("value"), stop.Number("best"), stop.Number("evaluations_without_improvement"), stop.Number("patience")),
            Is.EqualTo((-3.2, -3.0, 3.0, 3.0)));

        var events = TensorBoardEventReader.Read(Directory.GetFiles(Path.Combine(Dir("run"), TrainingLogWriter.TensorBoardFolder)).Single());
        var text = events.Where(e => e.Values.Any(v => v.Tag == TrainingLogWriter.EarlyStopTag)).ToList();
        Assert.That(text.Select(e => (e.Step, e.Values.Single().PluginName, e.Values.Single().TensorStrings.Single())), Is.EqualTo(new[] { (48L, "text", message) }));

        var report = File.ReadAllText(TrainingReport.Write(Dir("run"), Path.Combine(Dir("run"), "report")));
        Assert.That(report, Does.Contain($"Stopped early at iteration 48 (train.early_stopping): {message}."));
    }

    /// <summary>
    /// min_delta 0.5 over −5, −4.5, −4.25, −4, −3.875 with patience 2: −4.5 beats −5 by exactly 0.5, which is not more than
    /// min_delta (MMEngine would take it); −4.25 beats −5 by 0.75 and becomes the best; −4 and −3.875 beat −4.25 by 0.25 and
    /// 0.375, tiny improvements that count as none, so the run stops at the fifth evaluation, iteration 40. With min_delta 0
    /// the same rising course never stops.
    /// </summary>
    [Test]
    public void MinDeltaMakesATinyImprovementCountAsNone()
    {
        double[] course = [-5, -4.5, -4.25, -4, -3.875, -3, -2, -1];
        using var task = new ToyRegressionTask { MetricsAtEvaluation = Course(course) };
        var result = Train(task, Config(64, new EarlyStoppingConfig { Patience = 2, MinDelta = 0.5 }), Dir("delta"));
        Assert.That(result.Iteration, Is.EqualTo(40));
        Assert.That((result.EarlyStop!.Value, result.EarlyStop.Best, result.EarlyStop.EvaluationsWithoutImprovement), Is.EqualTo((-3.875, -4.25, 2)));

        using var plain = new ToyRegressionTask { MetricsAtEvaluation = Course(course) };
        var rising = Train(plain, Config(64, new EarlyStoppingConfig { Patience = 2 }), Dir("plain"));
        Assert.That((rising.Iteration, rising.EarlyStop), Is.EqualTo((64, (EarlyStop?)null)));
    }

    /// <summary>
    /// A metric where smaller is better (monitor mse, rule less) over 4, 3, 3.5, 3 with patience 2: 3 at 16 is the best, 3.5
    /// and the equal 3 are no improvement, so it stops at 32. Watched by rule greater, the same course stops at 24 (3 and 3.5
    /// both below 4).
    /// </summary>
    [Test]
    public void RuleLessWatchesAMetricWhereSmallerIsBetter()
    {
        Func<int, IReadOnlyDictionary<string, double>> mse = n => new Dictionary<string, double>
        {
            ["neg_mse"] = -new[] { 4, 3, 3.5, 3 }[n - 1],
            ["mse"] = new[] { 4, 3, 3.5, 3 }[n - 1],
        };
        using var less = new ToyRegressionTask { MetricsAtEvaluation = mse };
        var byLess = Train(less, Config(80, new EarlyStoppingConfig { Monitor = "mse", Rule = EarlyStoppingRule.Less, Patience = 2 }), Dir("less"));
        Assert.That(byLess.EarlyStop, Is.EqualTo(new EarlyStop(32, EarlyStopReason.NoImprovement, "mse", EarlyStoppingRule.Less, 3, 3, 2, 2, 0, null)));

        using var greater = new ToyRegressionTask { MetricsAtEvaluation = mse };
        var byGreater = Train(greater, Config(80, new EarlyStoppingConfig { Monitor = "mse", Patience = 2 }), Dir("greater"));
        Assert.That((byGreater.Iteration, byGreater.EarlyStop!.Best), Is.EqualTo((24, 4.0)));
    }

    /// <summary>
    /// stopping_threshold −2 with a patience that never runs out, over −5, −3, −2, −1.5: reaching −2 exactly is not beyond it
    /// (MMEngine's strict comparison), −1.5 is, and stops the run at once at 32.
    /// </summary>
    [Test]
    public void AValueBeyondTheStoppingThresholdStopsTheRunAtOnce()
    {
        var console = new StringWriter();
        using var task = new ToyRegressionTask { MetricsAtEvaluation = Course(-5, -3, -2, -1.5) };
        var result = Train(task, Config(80, new EarlyStoppingConfig { Patience = 100, StoppingThreshold = -2 }), Dir("threshold"), console);
        Assert.That(result.EarlyStop, Is.EqualTo(new EarlyStop(32, EarlyStopReason.StoppingThreshold, "neg_mse", EarlyStoppingRule.Greater, -1.5, -1.5, 0, 100, 0, -2)));
        Assert.That(console.ToString(), Does.Contain("early stopping at iteration 32 of 80: neg_mse -1.5 is above stopping_threshold -2;"));
        var stop = JsonLinesLog.Read(Path.Combine(Dir("threshold"), TrainingLogWriter.LocalFileName)).Last();
        Assert.That((stop.Mode, stop.Text("reason")), Is.EqualTo(("early_stop", "stopping_threshold")));
    }

    /// <summary>
    /// An undefined metric (NaN at the second evaluation) stops the run at once by default, as MMEngine's check_finite; with
    /// check_finite false the evaluation is ignored: over −5, NaN, −5, −4, … with patience 2, counting the NaN as no
    /// improvement would stop the run at 24 (with the equal −5), ignoring it lets the run go on to its end.
    /// </summary>
    [Test]
    public void ANonFiniteMetricStopsTheRunUnlessCheckFiniteIsOff()
    {
        double[] course = [-5, double.NaN, -5, -4, -3];
        using var strict = new ToyRegressionTask { MetricsAtEvaluation = Course(course) };
        var stopped = Train(strict, Config(40, new EarlyStoppingConfig { Patience = 2 }), Dir("strict"));
        Assert.That((stopped.Iteration, stopped.EarlyStop!.Reason, stopped.EarlyStop.Best), Is.EqualTo((16, EarlyStopReason.NotFinite, -5.0)));
        Assert.That(double.IsNaN(stopped.EarlyStop.Value), Is.True);

        using var lenient = new ToyRegressionTask { MetricsAtEvaluation = Course(course) };
        var finished = Train(lenient, Config(40, new EarlyStoppingConfig { Patience = 2, CheckFinite = false }), Dir("lenient"));
        Assert.That((finished.Iteration, finished.EarlyStop), Is.EqualTo((40, (EarlyStop?)null)));
    }

    /// <summary>
    /// The course of the plateau test with a best of −10/3 (no short decimal), patience 3: the uninterrupted run stops at 48.
    /// A run that crashes at iteration 42 leaves checkpoint 40, written after the evaluation at 40 had counted 2 evaluations
    /// without improvement; resumed from it, the run stops at 48 too, with the same best to the bit and the same count.
    /// Forgetting the count would have let it run past 48 (into the course's end); a checkpoint without the keys (a run that
    /// had no early stopping) starts the count at 0, so resumed with early stopping on it stops three evaluations later, at 72.
    /// </summary>
    [Test]
    public void AResumedRunStopsWhereTheUninterruptedOneDoes()
    {
        set_num_threads(1);
        const double third = -10.0 / 3;
        double[] course = [-5, -4, third, third, -3.5, -3.4, -3.5, -3.5, -3.5];
        var settings = new EarlyStoppingConfig { Patience = 3 };
        using var straight = new ToyRegressionTask { MetricsAtEvaluation = Course(course) };
        var uninterrupted = Train(straight, Config(80, settings), Dir("straight"));
        Assert.That(uninterrupted.EarlyStop, Is.EqualTo(new EarlyStop(48, EarlyStopReason.NoImprovement, "neg_mse", EarlyStoppingRule.Greater, -3.4, third, 3, 3, 0, null)));

        using (var crashing = new ToyRegressionTask(failAtCall: 43) { MetricsAtEvaluation = Course(course) })
            Assert.Throws<InvalidOperationException>(() => Train(crashing, Config(80, settings), Dir("resumed")));
        var checkpoint = new CheckpointDirectory(Dir("resumed"), 2).Latest()!;
        Assert.That(Path.GetFileName(checkpoint), Is.EqualTo("iter_0000040.safetensors"));
        using (var file = CheckpointFile.Load(checkpoint))
        {
            Assert.That(file.Metadata["early_stopping_evaluations_without_improvement"], Is.EqualTo("2"));
            Assert.That(BitConverter.DoubleToInt64Bits(double.Parse(file.Metadata["early_stopping_best"], CultureInfo.InvariantCulture)),
                Is.EqualTo(BitConverter.DoubleToInt64Bits(third)));
        }
        using var resumedTask = new ToyRegressionTask { MetricsAtEvaluation = Course(course), EvaluationsBefore = 5 };
        var resumed = Train(resumedTask, Config(80, settings), Dir("resumed"), resume: checkpoint);
        Assert.That(resumed.EarlyStop, Is.EqualTo(uninterrupted.EarlyStop));
        Assert.That(resumedTask.Weights(), Is.EqualTo(straight.Weights()), "the resume is exact");

        var withoutEarlyStopping = TrainerTests.Config(80);
        using (var crashing = new ToyRegressionTask(failAtCall: 43) { MetricsAtEvaluation = Course(course) })
            Assert.Throws<InvalidOperationException>(() => Train(crashing, withoutEarlyStopping, Dir("old")));
        var old = new CheckpointDirectory(Dir("old"), 2).Latest()!;
        using (var file = CheckpointFile.Load(old))
            Assert.That(file.Metadata.Keys.Where(k => k.StartsWith("early_stopping", StringComparison.Ordinal)), Is.Empty);
        using var fromOld = new ToyRegressionTask { MetricsAtEvaluation = Course(course), EvaluationsBefore = 5 };
        var late = Train(fromOld, Config(80, settings), Dir("old"), resume: old);
        Assert.That((late.Iteration, late.EarlyStop!.Best, late.EarlyStop.EvaluationsWithoutImprovement), Is.EqualTo((72, -3.4, 3)));
    }

    /// <summary>
    /// Resuming a run that stopped early goes on training with the count it stopped with: one more evaluation without
    /// improvement (patience 3, count 4) stops it again, at 56. Its report then tells of that stop, not of the one at 48,
    /// which the resume superseded. A resume watching another metric starts the count afresh and says so.
    /// </summary>
    [Test]
    public void AResumedEarlyStopKeepsItsCountAndSupersedesTheEarlierStop()
    {
        double[] course = [-5, -4, -3, -3, -3.5, -3.2, -3.1];
        var settings = new EarlyStoppingConfig { Patience = 3 };
        using (var first = new ToyRegressionTask { MetricsAtEvaluation = Course(course) })
            Assert.That(Train(first, Config(80, settings), Dir("run")).Iteration, Is.EqualTo(48));
        var checkpoint = new CheckpointDirectory(Dir("run"), 2).Latest()!;

        using (var again = new ToyRegressionTask { MetricsAtEvaluation = Course(course), EvaluationsBefore = 6 })
        {
            var result = Train(again, Config(80, settings), Dir("run"), resume: checkpoint);
            Assert.That((result.Iteration, result.EarlyStop!.EvaluationsWithoutImprovement, result.EarlyStop.Value), Is.EqualTo((56, 4, -3.1)));
        }
        var history = TrainingLogHistory.Read(Path.Combine(Dir("run"), TrainingLogWriter.LocalFileName));
        Assert.That(history.EarlyStop?.Iteration, Is.EqualTo(56));
        var report = File.ReadAllText(TrainingReport.Write(Dir("run"), Path.Combine(Dir("run"), "report")));
        Assert.That(report, Does.Contain("Stopped early at iteration 56").And.Not.Contain("Stopped early at iteration 48"));

        var console = new StringWriter();
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        using (var other = new ToyRegressionTask())
            new Trainer<(Tensor, Tensor)>(other, Config(80, new EarlyStoppingConfig { Monitor = "mse", Rule = EarlyStoppingRule.Less }), Dir("run"), "cfg", console)
                .Run(new CheckpointDirectory(Dir("run"), 2).Latest(), stop.Token);
        Assert.That(console.ToString(), Does.Contain("note: the checkpoint's early stopping watched neg_mse (greater); this run watches mse (less), " +
            "so its count of evaluations without improvement starts at 0"));
    }

    /// <summary>A monitor the evaluator does not return is refused at the first evaluation, naming the key and the metrics it returned.</summary>
    [Test]
    public void AnUnknownMonitorIsRefusedAtTheFirstEvaluation()
    {
        using var task = new ToyRegressionTask();
        var e = Assert.Throws<VimException>(() => Train(task, Config(80, new EarlyStoppingConfig { Monitor = "mIoU" }), Dir("unknown")))!;
        Assert.That(e.Message, Is.EqualTo("train.early_stopping.monitor: the evaluation at iteration 8 returned no 'mIoU'; it returned neg_mse. " +
            "Set train.early_stopping.monitor to one of them (null watches the task's primary metric)"));
    }

    /// <summary>The section binds from YAML (null or absent: off; --set on a key turns it on with the other keys' defaults) and the schema refuses unknown keys and rules by name.</summary>
    [Test]
    public void TheSectionIsReadFromConfigsAndCheckedByTheSchema()
    {
        var file = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        Assert.That(ExperimentConfig.Load(file).Config.Train.EarlyStopping, Is.Null);
        var on = ExperimentConfig.Load(file, ["train.early_stopping.patience=3", "train.early_stopping.rule=less"]).Config.Train.EarlyStopping!;
        Assert.That((on.Patience, on.Rule, on.MinDelta, on.Monitor, on.StoppingThreshold, on.CheckFinite),
            Is.EqualTo((3, EarlyStoppingRule.Less, 0.0, (string?)null, (double?)null, true)));
        Assert.That(ExperimentConfig.Load(file, ["train.early_stopping.patience=3", "train.early_stopping=null"]).Config.Train.EarlyStopping, Is.Null);

        var rule = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["train.early_stopping.rule=bigger"]))!;
        Assert.That(rule.Message, Does.Contain("'train.early_stopping.rule' must be one of greater, less, got 'bigger'"));
        var key = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["train.early_stopping.patince=3"]))!;
        Assert.That(key.Message, Does.Contain("unknown key 'train.early_stopping.patince'; did you mean 'train.early_stopping.patience'?"));
    }
}
