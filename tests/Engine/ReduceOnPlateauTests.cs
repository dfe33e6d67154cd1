using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

using static Vim.Tests.Engine.ParamSchedulerTestKit;

namespace Vim.Tests.Engine;

/// <summary>
/// ReduceOnPlateauLR in schedule.param_scheduler (MMEngine's ReduceOnPlateauParamScheduler, stepped by evaluations): scripted
/// metric sequences worked by hand through patience, cooldown, rel/abs thresholds, min_value and eps; the trainer applying
/// the reductions and resuming to the bit from checkpoints taken with bad evaluations counted and after a reduction; the
/// preview saying it cannot draw the reductions; the refusals.
/// </summary>
public class ReduceOnPlateauTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-plateau-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private static Dictionary<string, double> Metric(double value) => new() { ["loss"] = value };

    /// <summary>
    /// less/rel, threshold 0.1, patience 1, cooldown 1, factor 0.5, min_value 0.3, lr 1, evaluations every 10 iterations of
    /// 1.0, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9. By hand: 1.0 beats MMEngine's initial best 1e9 and is the best; 0.95 is
    /// not below 1.0·0.9 (bad 1), nor again (bad 2 &gt; patience): ×0.5 from iteration 30, cooldown 1; 0.8 is a new best and the
    /// cooldown clears the count; 0.9, 0.9 (bad 2): from 60 max(0.25, 0.3) = 0.3; at 70 the cooldown clears the count again, so
    /// the next reduction is at 90, where max(0.15, 0.3) = 0.3 is no lower: the lr stays. A group starting at 0.2 is never
    /// raised to min_value (0.3 − 0.2 is no decrease). Without the cooldown the third reduction falls at 80.
    /// </summary>
    [Test]
    public void PatienceCooldownRelativeThresholdAndMinValueByHand()
    {
        const string entry = "{type: ReduceOnPlateauLR, monitor: loss, threshold: 0.1, patience: 1, factor: 0.5, min_value: 0.3";
        var schedule = IterationChain(100, $"[{entry}, cooldown: 1}}]");
        double[] values = [1.0, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9];
        var reducedAt = new List<int>();
        for (int e = 0; e < values.Length; e++)
            if (schedule.ObserveEvaluation(10 * (e + 1), 0, Metric(values[e])).Count > 0) reducedAt.Add(10 * (e + 1));
        Assert.That(reducedAt, Is.EqualTo(new[] { 30, 60, 90 }));
        double Expected(int k) => k < 30 ? 1.0 : k < 60 ? 0.5 : 0.3;
        foreach (int k in new[] { 0, 29, 30, 59, 60, 89, 90, 99 }) Assert.That(schedule.LrAt(1.0, k), Is.EqualTo(Expected(k)), $"iteration {k}");
        Assert.That(schedule.LrAt(0.2, 99), Is.EqualTo(0.2), "min_value never raises a group");
        var state = schedule.Plateaus[0].State;
        Assert.That((state.Best, state.BadEvaluations, state.CooldownLeft), Is.EqualTo((0.8, 0, 1)));

        var noCooldown = IterationChain(100, $"[{entry}}}]");
        var without = new List<int>();
        for (int e = 0; e < values.Length; e++)
            if (noCooldown.ObserveEvaluation(10 * (e + 1), 0, Metric(values[e])).Count > 0) without.Add(10 * (e + 1));
        Assert.That(without, Is.EqualTo(new[] { 30, 60, 80 }));
    }

    /// <summary>
    /// greater/abs, threshold 0.5, patience 0, factor 0.1: 10, 10.4, 10.6, 11.0: 10.4 is not above 10 + 0.5 (reduce from 20),
    /// 10.6 is (best), 11.0 is not above 11.1 (reduce from 40): lr 1 → 0.1 → 0.01. With a relative threshold of 0.01 every
    /// value beats the best·1.01 before it: no reduction.
    /// </summary>
    [Test]
    public void AbsoluteAgainstRelativeThresholdWithGreaterRule()
    {
        double[] values = [10, 10.4, 10.6, 11.0];
        var absolute = IterationChain(50, "[{type: ReduceOnPlateauLR, monitor: loss, rule: greater, threshold_rule: abs, threshold: 0.5, patience: 0, factor: 0.1}]");
        var relative = IterationChain(50, "[{type: ReduceOnPlateauLR, monitor: loss, rule: greater, threshold: 0.01, patience: 0, factor: 0.1}]");
        for (int e = 0; e < values.Length; e++)
        {
            absolute.ObserveEvaluation(10 * (e + 1), 0, Metric(values[e]));
            relative.ObserveEvaluation(10 * (e + 1), 0, Metric(values[e]));
        }
        Assert.That(absolute.Plateaus[0].ReducedFrom, Is.EqualTo(new[] { 20, 40 }));
        Assert.That(absolute.LrAt(1.0, 19), Is.EqualTo(1.0));
        Assert.That(absolute.LrAt(1.0, 20), Is.EqualTo(0.1).Within(1e-17));
        Assert.That(absolute.LrAt(1.0, 49), Is.EqualTo(0.01).Within(1e-17));
        Assert.That(relative.Plateaus[0].ReducedFrom, Is.Empty);
    }

    /// <summary>
    /// eps 0.3, factor 0.5, patience 0, a constant metric: the first reduction lowers 1 to 0.5 (by 0.5 &gt; eps), the second
    /// would lower 0.5 by 0.25 ≤ eps and is ignored, as MMEngine ignores it; after a LinearLR warmup the reduction multiplies
    /// the lr the warmup left, last in the chain.
    /// </summary>
    [Test]
    public void EpsIgnoresSmallReductionsAndTheReductionActsLastInTheChain()
    {
        var schedule = IterationChain(40, "[{type: ReduceOnPlateauLR, monitor: loss, patience: 0, factor: 0.5, eps: 0.3}]");
        foreach (int done in new[] { 10, 20, 30 }) schedule.ObserveEvaluation(done, 0, Metric(1));
        Assert.That(schedule.Plateaus[0].ReducedFrom, Is.EqualTo(new[] { 20, 30 }));
        Assert.That(schedule.LrAt(1.0, 25), Is.EqualTo(0.5));
        Assert.That(schedule.LrAt(1.0, 39), Is.EqualTo(0.5), "0.5 − 0.25 is within eps");

        var warm = IterationChain(40, "[{type: LinearLR, start_factor: 0.5, by_epoch: false, end: 11}, {type: ReduceOnPlateauLR, monitor: loss, patience: 0, factor: 0.5}]");
        foreach (int done in new[] { 4, 8 }) warm.ObserveEvaluation(done, 0, Metric(1));
        Assert.That(warm.LrAt(1.0, 8), Is.EqualTo((0.5 + 0.5 * 8 / 10) * 0.5).Within(1e-15), "the warmup's lr at 8, halved");
        Assert.That(warm.LrAt(1.0, 10), Is.EqualTo(0.5).Within(1e-15), "the warmup still climbs to its end on the reduced lr");
    }

    /// <summary>
    /// In an epoch-counted run a ReduceOnPlateauLR without end ends at max_epochs (MMEngine's runner sets a left-out end to
    /// max_epochs for a by_epoch scheduler), so the evaluation after the last epoch (6 finished epochs of 6) is outside
    /// [begin, end) and neither counts nor reduces; with end: 7 written it does. Patience 0 on a constant metric: by hand the
    /// evaluations after epochs 2..5 reduce (the first sets the best), the one after epoch 6 only where end is 7.
    /// </summary>
    [Test]
    public void TheEvaluationAfterTheLastEpochIsPastALeftOutEnd()
    {
        ChainedParamSchedule Run(string end)
        {
            var schedule = EpochRun(6, 8, $"[{{type: ReduceOnPlateauLR, monitor: loss, patience: 0{end}}}]").Chained!;
            for (int epoch = 1; epoch <= 6; epoch++) schedule.ObserveEvaluation(8 * epoch, epoch, Metric(1));
            return schedule;
        }
        Assert.That(Run("").Plateaus[0].ReducedFrom, Is.EqualTo(new[] { 16, 24, 32, 40 }));
        Assert.That(Run(", end: 7").Plateaus[0].ReducedFrom, Is.EqualTo(new[] { 16, 24, 32, 40, 48 }));
    }

    /// <summary>
    /// The scripted course of the toy's metric: flat for three evaluations, better once, then flat. Positive: with a relative
    /// threshold a negative best·(1 + threshold) lies below the best, so an equal value would count as better (MMEngine's and
    /// PyTorch's arithmetic).
    /// </summary>
    private static IReadOnlyDictionary<string, double> Scripted(int evaluation) =>
        new Dictionary<string, double> { ["neg_mse"] = evaluation <= 3 ? 0.5 : 0.8 };

    /// <summary>
    /// The toy trainer, 6 epochs of 8 iterations, ReduceOnPlateauLR(neg_mse, greater, patience 1, factor 0.1) on the scripted
    /// metric 0.5, 0.5, 0.5, 0.8, 0.8, 0.8: by hand, the third evaluation (after epoch 3, iteration 24) is the second without
    /// improvement, so the optimiser applies 0.01 up to iteration 23 and 0.001 from 24; the evaluation after epoch 6 is past
    /// end (6 finished epochs, MMEngine's [begin, end) in epochs) and changes nothing. Interrupted with one bad evaluation counted
    /// (after iteration 19) or after the reduction (after 27) and resumed, it applies the same lrs and ends with the same
    /// weights, to the bit: the count, the best and the reductions travel in the checkpoint.
    /// </summary>
    [TestCase(19, 2)]
    [TestCase(27, 3)]
    public void TheTrainerReducesAtThePlateauAndAResumeMatchesTheUninterruptedRun(int interruptAfter, int evaluationsBefore)
    {
        set_num_threads(1);
        var config = ToyConfig("[{type: ReduceOnPlateauLR, monitor: neg_mse, rule: greater, patience: 1}]");
        var applied = new Dictionary<int, double>();
        var console = new StringWriter();
        using var straight = new ToyRegressionTask { MetricsAtEvaluation = Scripted };
        new Trainer<(Tensor, Tensor)>(straight, config, Path.Combine(_root, "straight"), "cfg", console)
        {
            AfterOptimizerStep = (iteration, optimizer) => applied[iteration] = optimizer.GroupLrs[0],
        }.Run(null);
        foreach (int k in Enumerable.Range(0, 48)) Assert.That(applied[k], Is.EqualTo(k < 24 ? 0.01 : 0.01 * 0.1).Within(1e-18), $"iteration {k}");
        Assert.That(console.ToString(), Does.Contain("schedule.param_scheduler[0] (ReduceOnPlateauLR): neg_mse has not improved for 2 evaluations; " +
            "the lr is multiplied by 0.1 from iteration 24"));

        using var stop = new CancellationTokenSource();
        TrainingResult partial;
        using (var first = new ToyRegressionTask { MetricsAtEvaluation = Scripted })
            partial = new Trainer<(Tensor, Tensor)>(first, config, Path.Combine(_root, "resumed"), "cfg", TextWriter.Null)
            {
                AfterOptimizerStep = (iteration, _) => { if (iteration == interruptAfter) stop.Cancel(); },
            }.Run(null, stop.Token);
        Assert.That(partial.Iteration, Is.EqualTo(interruptAfter + 1));
        var resumedLrs = new Dictionary<int, double>();
        using var resumed = new ToyRegressionTask { MetricsAtEvaluation = Scripted, EvaluationsBefore = evaluationsBefore };
        new Trainer<(Tensor, Tensor)>(resumed, config, Path.Combine(_root, "resumed"), "cfg", TextWriter.Null)
        {
            AfterOptimizerStep = (iteration, optimizer) => resumedLrs[iteration] = optimizer.GroupLrs[0],
        }.Run(partial.LastCheckpoint!);
        Assert.That(resumedLrs.Keys, Is.EqualTo(Enumerable.Range(interruptAfter + 1, 47 - interruptAfter)));
        Assert.That(resumedLrs.Values, Is.EqualTo(resumedLrs.Keys.Select(k => applied[k])), "bit-identical lrs");
        Assert.That(resumed.Weights(), Is.EqualTo(straight.Weights()), "bit-identical weights");
    }

    /// <summary>`vim config lr` draws the lr before any reduction and says so, rather than presenting it as the run's.</summary>
    [Test]
    public void ThePreviewSaysItCannotDrawTheReductions()
    {
        var config = ToyConfig("[{type: ReduceOnPlateauLR, monitor: neg_mse, rule: greater}]");
        var resolved = EpochSchedule.Resolve(config, 8).Config;
        using var task = new ToyRegressionTask(dropout: 0);
        var preview = new LrPreview(resolved, ParameterGroupRules.Build(task.Model, resolved.Optimizer, task.NumBackboneLayers), processes: 1, iterationsPerEpoch: 8);
        Assert.That(preview.Table(preview.Groups), Does.Contain("note: schedule.param_scheduler[0] (ReduceOnPlateauLR) reduces the lr when neg_mse stops improving, " +
            "which only training can tell: the lrs shown are those before any reduction"));
        Assert.That(preview.LrAt(preview.Groups[0], 47), Is.EqualTo(0.01));
    }

    private VimException LoadRefused(string yaml)
    {
        var path = Path.Combine(_root, "config.yaml");
        File.WriteAllText(path, yaml);
        return Assert.Throws<VimException>(() =>
        {
            var (config, _) = ExperimentConfig.Load(path);
            TrainingSettings.Check(config);
        })!;
    }

    [Test]
    public void BadPlateauEntriesAreRefusedByKey()
    {
        string Message(string entry, string train = "train:\n  eval_interval: 10\n") =>
            LoadRefused($"{train}schedule:\n  max_iters: 100\n  param_scheduler:\n    - {entry}\n").Message;
        Assert.That(Message("{type: ReduceOnPlateauLR, monitor: mIoU, by_epoch: false}"),
            Does.Contain("config.yaml:6: schedule.param_scheduler[0] (ReduceOnPlateauLR) by_epoch must be true").And.Contain("got false"));
        Assert.That(Message("{type: ReduceOnPlateauLR, monitor: mIoU, factor: 1.0}"), Does.Contain("(ReduceOnPlateauLR) factor must be in (0, 1)"));
        Assert.That(Message("{type: ReduceOnPlateauLR, monitor: mIoU, rule: max}"), Does.Contain("(ReduceOnPlateauLR) rule must be less or greater, got max"));
        Assert.That(Message("{type: ReduceOnPlateauLR, monitor: mIoU, threshold_rule: relative}"), Does.Contain("threshold_rule must be rel or abs"));
        Assert.That(Message("{type: ReduceOnPlateauLR, monitor: mIoU, begin: 2}"),
            Does.Contain("(ReduceOnPlateauLR) begin/end count finished epochs, and the run counts iterations"));
        Assert.That(Message("{type: ReduceOnPlateauLR, monitor: mIoU}", "train:\n  eval_interval: 0\n"),
            Does.Contain("config.yaml:6: schedule.param_scheduler[0] (ReduceOnPlateauLR) is stepped by evaluations, but train.eval_interval is 0"));

        // A monitor the task's evaluation never returns, refused before training with the names it does return.
        set_num_threads(1);
        var config = ToyConfig("[{type: ReduceOnPlateauLR}]");
        using var task = new ToyRegressionTask();
        var e = Assert.Throws<VimException>(() => new Trainer<(Tensor, Tensor)>(task, config, Path.Combine(_root, "run"), "cfg", TextWriter.Null).Run(null))!;
        Assert.That(e.Message, Does.Contain("schedule.param_scheduler[0] (ReduceOnPlateauLR) monitor 'loss' is not a metric this task's evaluation returns; expected one of neg_mse"));
        Assert.That(Directory.Exists(Path.Combine(_root, "run")), Is.False, "refused before the work dir is made");
    }
}
