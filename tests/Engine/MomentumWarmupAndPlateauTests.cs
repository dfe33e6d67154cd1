using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Evaluation.Reports;
using static TorchSharp.torch;

using static Vim.Tests.Engine.ParamSchedulerTestKit;

namespace Vim.Tests.Engine;

/// <summary>
/// mmdet's QuadraticWarmupMomentum and MMEngine's ReduceOnPlateauMomentum in schedule.param_scheduler, against values worked
/// by hand from their rules (X_t = X_{t−1} + X_base·(2t + 1)/(end − begin)², so X_t = X_base·(t + 1)²/(end − begin)²; the
/// plateau rule of ReduceOnPlateauLR on the momentum); the trainer logging and printing the reduced momentum; `vim config lr`'s
/// preview; and OneCycleLR's cycle_momentum over SGD with momentum 0, which PyTorch's OneCycleLR accepts and overwrites.
/// </summary>
public class MomentumWarmupAndPlateauTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-momentum-warmup-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// end 4 from momentum 0.9: 0.9·1/16 = 0.05625, 0.9·4/16 = 0.225, 0.9·9/16 = 0.50625, 0.9·16/16 = 0.9, then 0.9 held;
    /// QuadraticWarmupLR beside it does the same to the lr (0.02·(t + 1)²/36 over 6 iterations), each in its own chain.
    /// </summary>
    [Test]
    public void QuadraticWarmupMomentumClimbsToTheInitialMomentumAsTheSquareOfTheStep()
    {
        var schedule = IterationRun(10, "[{type: QuadraticWarmupMomentum, by_epoch: false, end: 4}, {type: QuadraticWarmupLR, by_epoch: false, end: 6}]");
        double[] momentum = [0.05625, 0.225, 0.50625, 0.9, 0.9, 0.9, 0.9];
        for (int k = 0; k < momentum.Length; k++) Near(schedule.MomentumAt(0.9, k)!.Value, momentum[k], $"momentum at {k}");
        for (int k = 0; k < 10; k++) Near(schedule.LrAt(0.02, k), 0.02 * Math.Pow(Math.Min(k, 5) + 1, 2) / 36, $"lr at {k}");
    }

    /// <summary>
    /// patience 0, factor 0.5, min_value 0.3 on a constant metric evaluated after 10, 20, 30, 40: the first sets the best (below
    /// MMEngine's initial 1e9), each later one is bad: from 20 the momentum 0.9 is 0.45, from 30 max(0.225, 0.3) = 0.3, and at
    /// 40 max(0.15, 0.3) = 0.3 lowers nothing. The lr (no lr entry) stays.
    /// </summary>
    [Test]
    public void ReduceOnPlateauMomentumReducesTheMomentumByTheLrRule()
    {
        var schedule = IterationChain(50, "[{type: ReduceOnPlateauMomentum, monitor: loss, patience: 0, factor: 0.5, min_value: 0.3}]");
        foreach (int done in new[] { 10, 20, 30, 40 }) schedule.ObserveEvaluation(done, 0, new Dictionary<string, double> { ["loss"] = 1 });
        Assert.That(schedule.Plateaus[0].ReducedFrom, Is.EqualTo(new[] { 20, 30, 40 }));
        double Expected(int k) => k < 20 ? 0.9 : k < 30 ? 0.45 : 0.3;
        foreach (int k in new[] { 0, 19, 20, 29, 30, 39, 40, 49 }) Assert.That(schedule.MomentumAt(0.9, k), Is.EqualTo(Expected(k)), $"iteration {k}");
        Assert.That(schedule.LrAt(0.01, 49), Is.EqualTo(0.01));
        Assert.That(schedule.SchedulesMomentum, Is.True);
    }

    private static OptimizerConfig Sgd(double momentum) => new() { Type = OptimizerKind.Sgd, Lr = 0.01, WeightDecay = 0.01, Momentum = momentum };

    /// <summary>
    /// The toy trainer (6 epochs of 8 iterations), SGD momentum 0.9, ReduceOnPlateauMomentum(neg_mse, greater, patience 1) on
    /// the scripted metric 0.5, 0.5, 0.5, 0.8, …: the third evaluation (after iteration 24) is the second without improvement,
    /// so the momentum is 0.9·0.1 = 0.09 from iteration 24: log records up to 24 carry 0.9 (the momentum of their last
    /// iteration), later ones 0.09, the progress lines print it, and the console says the momentum was reduced; the lr stays.
    /// </summary>
    [Test]
    public void TheTrainerReducesLogsAndPrintsTheMomentum()
    {
        set_num_threads(1);
        var config = ToyConfig("[{type: ReduceOnPlateauMomentum, monitor: neg_mse, rule: greater, patience: 1}]", Sgd(0.9));
        var console = new StringWriter();
        var lrs = new List<double>();
        using var task = new ToyRegressionTask { MetricsAtEvaluation = evaluation => new Dictionary<string, double> { ["neg_mse"] = evaluation <= 3 ? 0.5 : 0.8 } };
        new Trainer<(Tensor, Tensor)>(task, config, Path.Combine(_root, "run"), "cfg", console)
        {
            AfterOptimizerStep = (_, optimizer) => lrs.Add(optimizer.GroupLrs[0]),
        }.Run(null);
        var records = JsonLinesLog.Read(Path.Combine(_root, "run", "log.jsonl")).Where(r => r.Mode is null && !r.IsEvaluation).ToList();
        Assert.That(records.Select(r => r.Iteration), Is.EqualTo(Enumerable.Range(1, 12).Select(i => 4 * i)));
        foreach (var r in records) Assert.That(r.Number("momentum"), Is.EqualTo(r.Iteration <= 24 ? 0.9 : 0.9 * 0.1).Within(1e-15), $"record {r.Iteration}");
        Assert.That(lrs, Is.All.EqualTo(0.01));
        var text = console.ToString();
        Assert.That(text, Does.Contain("schedule.param_scheduler[0] (ReduceOnPlateauMomentum): neg_mse has not improved for 2 evaluations; " +
            "the momentum is multiplied by 0.1 from iteration 24"));
        Assert.That(text, Does.Contain("iter 24/48 |").And.Contain("momentum 0.9 |").And.Contain("momentum 0.09 |"));

        // The evaluation record and `vim report` say the momentum was reduced, not the lr.
        var reduction = JsonLinesLog.Read(Path.Combine(_root, "run", "log.jsonl")).Single(r => r.IsEvaluation && (r.Has("lr_reduced") || r.Has("momentum_reduced")));
        Assert.That((reduction.Iteration, reduction.Text("momentum_reduced"), reduction.Has("lr_reduced")),
            Is.EqualTo((24, "schedule.param_scheduler[0] (ReduceOnPlateauMomentum)", false)));
        var report = File.ReadAllText(TrainingReport.Write(Path.Combine(_root, "run"), Path.Combine(_root, "report")));
        Assert.That(report, Does.Contain("The momentum was reduced after the evaluation at iteration 24 (epoch 3): schedule.param_scheduler[0] (ReduceOnPlateauMomentum).")
            .And.Not.Contain("The lr was reduced"));
    }

    /// <summary>`vim config lr` draws the momentum a ReduceOnPlateauMomentum starts from and says it cannot draw the reductions.</summary>
    [Test]
    public void ThePreviewSaysItCannotDrawTheMomentumReductions()
    {
        var config = ToyConfig("[{type: QuadraticWarmupMomentum, by_epoch: false, end: 4}, {type: ReduceOnPlateauMomentum, monitor: neg_mse, rule: greater}]", Sgd(0.9));
        var resolved = EpochSchedule.Resolve(config, 8).Config;
        using var task = new ToyRegressionTask(dropout: 0);
        var preview = new LrPreview(resolved, ParameterGroupRules.Build(task.Model, resolved.Optimizer, task.NumBackboneLayers), processes: 1, iterationsPerEpoch: 8);
        Assert.That(preview.Table(preview.Groups), Does.Contain("note: schedule.param_scheduler[1] (ReduceOnPlateauMomentum) reduces the momentum when neg_mse " +
            "stops improving, which only training can tell: the momentum values shown are those before any reduction"));
        Near(preview.MomentumAt(1)!.Value, 0.225, "the warmup's second step, 0.9·4/16");
        Near(preview.MomentumAt(47)!.Value, 0.9, "the warmup's end holds");
        Assert.That(preview.ToCsv(preview.Groups, [0, 3]).Split('\n')[0].TrimEnd(), Does.EndWith(",momentum"));
    }

    /// <summary>
    /// PyTorch's OneCycleLR with cycle_momentum writes its own momentum (max_momentum down to base_momentum and back) into
    /// SGD's groups whatever SGD was built with, momentum=0 included: the run with optimizer.momentum 0 is accepted and trains
    /// to the same weights, bit for bit, as with 0.9; a rule that starts from the configured momentum
    /// (QuadraticWarmupMomentum, LinearMomentum) still refuses 0, as it would keep it there.
    /// </summary>
    [Test]
    public void OneCycleCycleMomentumOverwritesSgdsZeroMomentumAsPytorch()
    {
        set_num_threads(1);
        const string oneCycle = "[{type: OneCycleLR, eta_max: 0.02, by_epoch: false, cycle_momentum: true}]";
        var fromZero = ToyConfig(oneCycle, Sgd(0));
        Assert.DoesNotThrow(() => TrainingSettings.Check(fromZero));
        using var zero = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(zero, fromZero, Path.Combine(_root, "zero"), "cfg", TextWriter.Null).Run(null);
        using var nine = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(nine, ToyConfig(oneCycle, Sgd(0.9)), Path.Combine(_root, "nine"), "cfg", TextWriter.Null).Run(null);
        Assert.That(zero.Weights(), Is.EqualTo(nine.Weights()));
        using var plain = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(plain, ToyConfig("[{type: OneCycleLR, eta_max: 0.02, by_epoch: false}]", Sgd(0)), Path.Combine(_root, "plain"), "cfg",
            TextWriter.Null).Run(null);
        Assert.That(plain.Weights(), Is.Not.EqualTo(zero.Weights()), "without cycle_momentum SGD keeps its momentum 0");

        var refused = Assert.Throws<VimException>(() => TrainingSettings.Check(ToyConfig("[{type: QuadraticWarmupMomentum, by_epoch: false, end: 4}]", Sgd(0))))!;
        Assert.That(refused.Message, Does.Contain("(QuadraticWarmupMomentum) schedules SGD's momentum, but optimizer.momentum is 0"));
    }
}
