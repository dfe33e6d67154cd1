using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

using static Vim.Tests.Engine.ParamSchedulerTestKit;

namespace Vim.Tests.Engine;

/// <summary>
/// schedule.param_scheduler (MMEngine's chained param schedulers): each type against its closed form worked out by hand
/// from MMEngine's documented recursion, the three recipes the brief names (mmdet 1x, mmseg, RTMDet) at their turning
/// iterations, overlapping schedulers in MMEngine's order, per-group initial lrs with an absolute eta_min, resume to the
/// bit (a fresh schedule queried from the middle, and a toy run interrupted and resumed), and the refusals by file, entry
/// and key.
/// </summary>
public class ParamSchedulerTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-param-scheduler-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// Alone over [0, end), each type's recursion has a closed form: LinearLR s + (1 − s)·k/(end − 1); ConstantLR f until
    /// end − 1, where MMEngine divides it back out; StepLR γ^⌊k/S⌋; MultiStepLR γ^(milestones ≤ k); ExponentialLR γ^k;
    /// CosineAnnealingLR η + (1 − η)(1 + cos(πk/T))/2; PolyLR η + (1 − η)(1 − k/(end − 1))^p (it reaches η at end − 1, not
    /// at end as the fixed poly policy); QuadraticWarmupLR (k + 1)²/end²; CosineRestartLR a cosine per period, restarting
    /// at weight × lr. The lr holds after end.
    /// </summary>
    [Test]
    public void EachTypeAloneFollowsItsClosedForm()
    {
        var linear = IterationRun(20, "[{type: LinearLR, start_factor: 0.2, by_epoch: false, end: 11}]");
        Near(linear.LrAt(2.0, 0), 0.4);
        Near(linear.LrAt(2.0, 4), 2.0 * (0.2 + 0.8 * 4 / 10));
        Near(linear.LrAt(2.0, 10), 2.0);
        Near(linear.LrAt(2.0, 19), 2.0);

        var constant = IterationRun(10, "[{type: ConstantLR, factor: 0.5, by_epoch: false, end: 5}]");
        Assert.That(Enumerable.Range(0, 10).Select(k => constant.LrAt(1.0, k)), Is.EqualTo(new[] { 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1, 1 }));

        var step = IterationRun(10, "[{type: StepLR, step_size: 3, gamma: 0.5, by_epoch: false}]");
        Assert.That(Enumerable.Range(0, 10).Select(k => step.LrAt(1.0, k)), Is.EqualTo(new[] { 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125 }));

        var multistep = IterationRun(10, "[{type: MultiStepLR, milestones: [2, 7], gamma: 0.1, by_epoch: false, begin: 1}]");
        // Milestones count from begin (MMEngine's last_step): iterations 3 and 8.
        Assert.That(Enumerable.Range(0, 10).Select(k => multistep.LrAt(1.0, k)),
            Is.EqualTo(new[] { 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01 }).Within(1e-15));

        var exponential = IterationRun(10, "[{type: ExponentialLR, gamma: 0.9, by_epoch: false}]");
        Near(exponential.LrAt(1.0, 5), Math.Pow(0.9, 5));

        var cosine = IterationRun(100, "[{type: CosineAnnealingLR, T_max: 80, eta_min: 0.1, by_epoch: false}]");
        Near(cosine.LrAt(1.0, 0), 1.0);
        Near(cosine.LrAt(1.0, 40), 0.1 + 0.9 * 0.5);
        Near(cosine.LrAt(1.0, 20), 0.1 + 0.9 * (1 + Math.Cos(Math.PI / 4)) / 2);
        Near(cosine.LrAt(1.0, 80), 0.1, "T_max 80: the floor at iteration 80");
        // Past T_max it climbs again, as MMEngine's (and torch's) SGDR form does: at 90, cos(π·90/80).
        Near(cosine.LrAt(1.0, 90), 0.1 + 0.9 * (1 + Math.Cos(Math.PI * 90 / 80)) / 2);

        var cosineByRatio = IterationRun(10, "[{type: CosineAnnealingLR, eta_min_ratio: 0.05, by_epoch: false}]");
        // T_max left out: end − begin = 10; the floor is 5% of the initial lr.
        Near(cosineByRatio.LrAt(2.0, 5), 0.1 + 1.9 * 0.5);

        var poly = IterationRun(11, "[{type: PolyLR, eta_min: 0.1, power: 2.0, by_epoch: false}]");
        Near(poly.LrAt(1.0, 5), 0.1 + 0.9 * Math.Pow(1 - 5.0 / 10, 2));
        Near(poly.LrAt(1.0, 10), 0.1);

        var quadratic = IterationRun(10, "[{type: QuadraticWarmupLR, by_epoch: false, end: 4}]");
        Assert.That(Enumerable.Range(0, 6).Select(k => quadratic.LrAt(16.0, k)), Is.EqualTo(new[] { 1.0, 4, 9, 16, 16, 16 }));

        var restart = IterationRun(12, "[{type: CosineRestartLR, periods: [4, 8], restart_weights: [1, 0.5], eta_min: 0, by_epoch: false}]");
        Near(restart.LrAt(1.0, 2), 0.5);
        Near(restart.LrAt(1.0, 4), 0.5, "restart at weight 0.5");
        Near(restart.LrAt(1.0, 8), 0.25, "half of the second period");
    }

    /// <summary>
    /// mmdet's 1x: LinearLR(start_factor 0.001, by_epoch False, end 500) and MultiStepLR(milestones [8, 11], by_epoch True)
    /// over 12 epochs of 100 iterations. After warmup it gives the fixed schedule's lrs (multistep with the milestones at
    /// 800 and 1100). During warmup the two differ: MMEngine's LinearLR reaches the full lr at iteration end − 1 = 499
    /// (factor s + (1 − s)·k/499), the fixed warmup_ratio schedule (mmcv 1.x's) at iteration 500 (s + (1 − s)·k/500).
    /// </summary>
    [Test]
    public void TheMmdet1xListMatchesTheFixedScheduleAfterWarmupAndMmengineWarmupReachesFullLrOneIterationEarlier()
    {
        var list = EpochRun(12, 100, """
            [{type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500},
             {type: MultiStepLR, begin: 0, end: 12, by_epoch: true, milestones: [8, 11], gamma: 0.1}]
            """);
        var fixedSchedule = new LrSchedule(new ScheduleConfig
        {
            MaxIters = 1200, Policy = LrPolicy.Multistep, Milestones = [800, 1100], Gamma = 0.1, WarmupIters = 500, WarmupRatio = 0.001,
        });
        const double lr = 0.02;
        foreach (int k in new[] { 500, 501, 799, 800, 1099, 1100, 1199 })
            Near(list.LrAt(lr, k), fixedSchedule.LrAt(lr, k), $"iteration {k}");
        Near(list.LrAt(lr, 799), lr);
        Near(list.LrAt(lr, 800), lr * 0.1);
        Near(list.LrAt(lr, 1100), lr * 0.01);

        Near(list.LrAt(lr, 0), lr * 0.001);
        Near(list.LrAt(lr, 250), lr * (0.001 + 0.999 * 250 / 499));
        Near(list.LrAt(lr, 499), lr);
        Assert.That(fixedSchedule.LrAt(lr, 250), Is.EqualTo(lr * (0.001 + 0.999 * 250 / 500)).Within(1e-15));
        Assert.That(fixedSchedule.LrAt(lr, 499), Is.LessThan(lr), "the fixed warmup is still below the full lr at 499");
        Assert.That(list.LrAt(lr, 0), Is.EqualTo(fixedSchedule.LrAt(lr, 0)).Within(1e-18), "both start at start_factor × lr");
    }

    /// <summary>
    /// RTMDet's list on 300 epochs of 10 iterations: LinearLR(1e-5, by_epoch False, end 1000), then
    /// CosineAnnealingLR(eta_min = lr × 0.05, begin 150, end 300, T_max 150, by_epoch True, convert_to_iter_based) over
    /// iterations [1500, 3000) with T_max 1500. Flat at the lr between them, half way down at 2250, and one cosine step
    /// short of the floor at the last iteration.
    /// </summary>
    [Test]
    public void TheRtmdetListAtItsBoundaries()
    {
        const double lr = 0.004, etaMin = lr * 0.05;
        var schedule = EpochRun(300, 10, $$"""
            [{type: LinearLR, start_factor: 1.0e-5, by_epoch: false, begin: 0, end: 1000},
             {type: CosineAnnealingLR, eta_min: {{etaMin.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}}, begin: 150, end: 300, T_max: 150, by_epoch: true, convert_to_iter_based: true}]
            """);
        Near(schedule.LrAt(lr, 0), lr * 1e-5);
        Near(schedule.LrAt(lr, 500), lr * (1e-5 + (1 - 1e-5) * 500 / 999));
        Near(schedule.LrAt(lr, 999), lr);
        Near(schedule.LrAt(lr, 1000), lr);
        Near(schedule.LrAt(lr, 1500), lr, "the cosine's first step leaves the lr");
        Near(schedule.LrAt(lr, 1501), etaMin + (lr - etaMin) * (1 + Math.Cos(Math.PI / 1500)) / 2);
        Near(schedule.LrAt(lr, 2250), etaMin + (lr - etaMin) / 2);
        Near(schedule.LrAt(lr, 2999), etaMin + (lr - etaMin) * (1 + Math.Cos(Math.PI * 1499 / 1500)) / 2);
        Assert.That(schedule.Chained!.Describe(), Is.EqualTo("schedule.param_scheduler in iterations: LinearLR iterations [0, 1000); " +
            "CosineAnnealingLR iterations [1500, 3000), T_max 1500 iterations"));
    }

    /// <summary>
    /// mmseg's list: LinearLR(1e-6, end 1500) then PolyLR(eta_min 0, power 1, begin 1500, end 160000), both by_epoch False.
    /// PolyLR counts its own steps from 1500 and reaches 0 at its end − 1.
    /// </summary>
    [Test]
    public void TheMmsegList()
    {
        var schedule = IterationRun(160000, """
            [{type: LinearLR, start_factor: 1.0e-6, by_epoch: false, begin: 0, end: 1500},
             {type: PolyLR, eta_min: 0.0, power: 1.0, begin: 1500, end: 160000, by_epoch: false}]
            """);
        const double lr = 6e-5;
        Near(schedule.LrAt(lr, 1499), lr);
        Near(schedule.LrAt(lr, 1500), lr);
        // (160000 − 1500 − 1) poly steps in all: at step k the lr is lr·(1 − k/158499).
        Near(schedule.LrAt(lr, 1500 + 1000), lr * (1 - 1000.0 / 158499));
        Near(schedule.LrAt(lr, 159999), 0.0);
    }

    /// <summary>
    /// Overlapping schedulers chain in list order on the lr the previous ones left, so with a floor the result is not the
    /// product of their closed forms. LinearLR(0.5, end 3) then CosineAnnealingLR(T_max 4, eta_min 0.1), lr 1, by hand:
    /// it 0: 1 × 0.5 = 0.5, the cosine's first step keeps it; it 1: the linear step ×(1 + 0.5/(2·0.5)) = 0.75, the cosine
    /// step (1 + cos(π/4))/2 × (0.75 − 0.1) + 0.1 = 0.654810; it 2: ×(1 + 0.5/(1 + 0.5)) = 0.873080, then
    /// (1 + cos(π/2))/(1 + cos(π/4)) × (0.873080 − 0.1) + 0.1 = 0.552860. The products would be 0.651149 and 0.55.
    /// Both multiplicative (no floor), LinearLR over MultiStepLR is the product.
    /// </summary>
    [Test]
    public void OverlappingSchedulersChainInListOrder()
    {
        var chained = IterationRun(4, "[{type: LinearLR, start_factor: 0.5, by_epoch: false, end: 3}, {type: CosineAnnealingLR, T_max: 4, eta_min: 0.1, by_epoch: false}]");
        Near(chained.LrAt(1.0, 0), 0.5);
        double first = (1 + Math.Cos(Math.PI / 4)) / 2 * (0.75 - 0.1) + 0.1;
        Near(chained.LrAt(1.0, 1), first);
        Near(chained.LrAt(1.0, 2), (1 + Math.Cos(Math.PI / 2)) / (1 + Math.Cos(Math.PI / 4)) * (first * (1 + 0.5 / 1.5) - 0.1) + 0.1);
        Assert.That(chained.LrAt(1.0, 1), Is.Not.EqualTo(0.75 * (0.1 + 0.9 * (1 + Math.Cos(Math.PI / 4)) / 2)).Within(1e-6));

        var product = IterationRun(10, "[{type: LinearLR, start_factor: 0.5, by_epoch: false, end: 6}, {type: MultiStepLR, milestones: [3], by_epoch: false}]");
        foreach (int k in Enumerable.Range(0, 10))
            Near(product.LrAt(1.0, k), (k < 5 ? 0.5 + 0.5 * k / 5 : 1.0) * (k >= 3 ? 0.1 : 1.0), $"iteration {k}");
    }

    /// <summary>
    /// A by_epoch scheduler without convert_to_iter_based steps at epoch ends: the lr is constant within an epoch and the
    /// cosine's T_max counts epochs (3 epochs of 4 iterations: η + (1 − η)(1 + cos(πe/3))/2 in epoch e).
    /// </summary>
    [Test]
    public void AnEpochSteppedSchedulerHoldsTheLrWithinEachEpoch()
    {
        var schedule = EpochRun(3, 4, "[{type: CosineAnnealingLR, eta_min: 0.1}]");
        var expected = new[] { 1.0, 0.1 + 0.9 * 0.75, 0.1 + 0.9 * 0.25 };
        foreach (int k in Enumerable.Range(0, 12)) Near(schedule.LrAt(1.0, k), expected[k / 4], $"iteration {k}");
    }

    /// <summary>
    /// Each group's initial lr is base × its scale and the schedulers act on it; eta_min is one absolute floor (a group at
    /// half the lr ends on the same 0.1), eta_min_ratio a fraction of each group's own.
    /// </summary>
    [Test]
    public void GroupsStartFromTheirScaledLrWithAnAbsoluteFloor()
    {
        var absolute = IterationRun(11, "[{type: PolyLR, eta_min: 0.1, by_epoch: false}]");
        Near(absolute.GroupLrAt(1.0, 0.5, 0), 0.5);
        Near(absolute.GroupLrAt(1.0, 0.5, 5), 0.1 + 0.4 * 0.5);
        Near(absolute.GroupLrAt(1.0, 0.5, 10), 0.1);
        Near(absolute.GroupLrAt(1.0, 1.0, 10), 0.1);
        var ratio = IterationRun(10, "[{type: CosineAnnealingLR, eta_min_ratio: 0.1, by_epoch: false}]");
        Near(ratio.GroupLrAt(1.0, 0.5, 5), 0.05 + 0.45 * 0.5);
    }

    /// <summary>
    /// The lr is a function of the iteration: a fresh schedule (a resumed run's) asked first at iteration 700, or asked
    /// backwards, gives the same doubles as one asked at every iteration from 0.
    /// </summary>
    [Test]
    public void AFreshScheduleQueriedMidRunGivesTheSameBits()
    {
        const string yaml = "[{type: LinearLR, start_factor: 0.001, by_epoch: false, end: 300}, {type: CosineAnnealingLR, eta_min: 1.0e-6, begin: 100, by_epoch: false}]";
        var straight = IterationRun(1000, yaml);
        var lrs = Enumerable.Range(0, 1000).Select(k => straight.GroupLrAt(1e-4, 0.7, k)).ToArray();
        var resumed = IterationRun(1000, yaml);
        Assert.That(Enumerable.Range(700, 300).Select(k => resumed.GroupLrAt(1e-4, 0.7, k)), Is.EqualTo(lrs[700..]));
        Assert.That(resumed.GroupLrAt(1e-4, 0.7, 150), Is.EqualTo(lrs[150]), "asked backwards, it replays from 0");
    }

    /// <summary>
    /// The toy trainer on 3 epochs of 8 iterations with LinearLR(0.1, by_epoch False, end 5) and an epoch-stepped
    /// CosineAnnealingLR(eta_min 0.001): the optimiser applies 0.01·(0.1 + 0.9k/4) for k ≤ 4, 0.01 to the end of epoch 1,
    /// 0.001 + 0.009·0.75 in epoch 2 and 0.001 + 0.009·0.25 in epoch 3; interrupted after iteration 11 and resumed, it
    /// applies the same lrs and ends with the same weights, to the bit.
    /// </summary>
    [Test]
    public void TheTrainerAppliesTheListAndAResumeMatchesTheUninterruptedRun()
    {
        set_num_threads(1);
        var config = new ExperimentConfig
        {
            Optimizer = new OptimizerConfig { Lr = 0.01, WeightDecay = 0.01 },
            Schedule = new ScheduleConfig
            {
                MaxEpochs = 3,
                ParamScheduler = List("[{type: LinearLR, start_factor: 0.1, by_epoch: false, end: 5}, {type: CosineAnnealingLR, eta_min: 0.001}]"),
            },
            Train = new TrainConfig { LogInterval = 4, EvalInterval = 1, CheckpointInterval = 1, KeepLast = 5 },
            Runtime = new RuntimeConfig { Seed = 3 },
        };
        var applied = new Dictionary<int, double>();
        using var straight = new ToyRegressionTask();
        var console = new StringWriter();
        new Trainer<(Tensor, Tensor)>(straight, config, Path.Combine(_root, "straight"), "cfg", console)
        {
            AfterOptimizerStep = (iteration, optimizer) => applied[iteration] = optimizer.GroupLrs[0],
        }.Run(null);
        double Expected(int k) => k < 8 ? 0.01 * (k <= 4 ? 0.1 + 0.9 * k / 4 : 1.0) : k < 16 ? 0.001 + 0.009 * 0.75 : 0.001 + 0.009 * 0.25;
        foreach (int k in Enumerable.Range(0, 24)) Near(applied[k], Expected(k), $"iteration {k}");
        Assert.That(console.ToString(), Does.Contain("schedule.param_scheduler in iterations: LinearLR iterations [0, 5); " +
            "CosineAnnealingLR iterations [0, 24), stepping every 8 (epoch ends), T_max 24 iterations"));

        using var stop = new CancellationTokenSource();
        TrainingResult partial;
        using (var first = new ToyRegressionTask())
            partial = new Trainer<(Tensor, Tensor)>(first, config, Path.Combine(_root, "resumed"), "cfg", TextWriter.Null)
            {
                AfterOptimizerStep = (iteration, _) => { if (iteration == 11) stop.Cancel(); },
            }.Run(null, stop.Token);
        Assert.That(partial.Iteration, Is.EqualTo(12));
        var resumedLrs = new Dictionary<int, double>();
        using var resumed = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(resumed, config, Path.Combine(_root, "resumed"), "cfg", TextWriter.Null)
        {
            AfterOptimizerStep = (iteration, optimizer) => resumedLrs[iteration] = optimizer.GroupLrs[0],
        }.Run(partial.LastCheckpoint!);
        Assert.That(resumedLrs.Keys, Is.EqualTo(Enumerable.Range(12, 12)));
        Assert.That(resumedLrs.Values, Is.EqualTo(Enumerable.Range(12, 12).Select(k => applied[k])), "bit-identical lrs");
        Assert.That(resumed.Weights(), Is.EqualTo(straight.Weights()), "bit-identical weights");
    }

    /// <summary>
    /// With layer decay (the toy's scales 0.36, 0.6 and 1), LinearLR(0.5, end 4) then PolyLR(eta_min 1e-4, begin 4) over 12
    /// iterations: every group's lr in the optimiser equals `vim config lr`'s preview (one formula); at iteration 6 (PolyLR's
    /// step 2 of 12 − 4 − 1 = 7) the head's is 1e-4 + (0.02 − 1e-4)·(1 − 2/7) by hand, the embedding's
    /// 1e-4 + (0.0072 − 1e-4)·(1 − 2/7) (its own initial lr, the same absolute floor); the preview labels the schedulers' turn.
    /// </summary>
    [Test]
    public void TheTrainerAndThePreviewShareTheFormulaPerGroup()
    {
        set_num_threads(1);
        var config = new ExperimentConfig
        {
            Optimizer = new OptimizerConfig { Lr = 0.02, WeightDecay = 0.01, LayerDecayRate = 0.6 },
            Schedule = new ScheduleConfig
            {
                MaxIters = 12,
                ParamScheduler = List("[{type: LinearLR, start_factor: 0.5, by_epoch: false, end: 4}, {type: PolyLR, eta_min: 1.0e-4, begin: 4, by_epoch: false}]"),
            },
            Train = new TrainConfig { LogInterval = 4, CheckpointInterval = 12, EvalInterval = 0, KeepLast = 1 },
        };
        config.Data.BatchSize = 4;
        using var task = new ToyRegressionTask(dropout: 0, layered: true);
        var preview = new LrPreview(config, ParameterGroupRules.Build(task.Model, config.Optimizer, task.NumBackboneLayers), processes: 1);
        var seen = new List<(int Iteration, string Group, double Lr)>();
        new Trainer<(Tensor, Tensor)>(task, config, Path.Combine(_root, "run"), "cfg", TextWriter.Null)
        {
            AfterOptimizerStep = (iteration, optimizer) => seen.AddRange(optimizer.Groups.Select((g, i) => (iteration, g.Name, optimizer.GroupLrs[i]))),
        }.Run(null);
        var byName = preview.Groups.ToDictionary(g => g.Name);
        Assert.That(seen, Has.Count.EqualTo(12 * byName.Count));
        foreach (var (iteration, group, lr) in seen)
            Assert.That(lr, Is.EqualTo(preview.LrAt(byName[group], iteration)), $"{group} at iteration {iteration}");
        var head = preview.Groups.First(g => g.LrScale == 1.0);
        var embedding = preview.Groups.First(g => Math.Abs(g.LrScale - 0.36) < 1e-12);
        Near(preview.LrAt(head, 6), 1e-4 + (0.02 - 1e-4) * (1 - 2.0 / 7));
        Near(preview.LrAt(embedding, 6), 1e-4 + (0.02 * embedding.LrScale - 1e-4) * (1 - 2.0 / 7));
        Assert.That(preview.KeyIterations(), Is.EqualTo(new[] { ("first", 0), ("LinearLR end", 4), ("last", 11) }));
    }

    private VimException LoadRefused(string yaml, string? baseYaml = null)
    {
        if (baseYaml is not null) File.WriteAllText(Path.Combine(_root, "base.yaml"), baseYaml);
        var path = Path.Combine(_root, "config.yaml");
        File.WriteAllText(path, yaml);
        return Assert.Throws<VimException>(() => ExperimentConfig.Load(path))!;
    }

    private static string Schedule(string entries, string length = "max_iters: 1000") => $"schedule:\n  {length}\n  param_scheduler:\n{entries}";

    [Test]
    public void BadEntriesAreRefusedNamingFileLineEntryAndKey()
    {
        string Message(string entries, string length = "max_iters: 1000") => LoadRefused(Schedule(entries, length)).Message;
        Assert.That(Message("    - {type: LinearLR, by_epoch: false}\n    - {type: LinerLR, by_epoch: false}\n"),
            Does.Contain("config.yaml:5: schedule.param_scheduler[1].type 'LinerLR' is not a supported scheduler").And.Contain("did you mean 'LinearLR'?"));
        Assert.That(Message("    - {type: LinearLR, by_epoch: false, milestones: [8]}\n"),
            Does.Contain("config.yaml:4: unknown key 'milestones' in schedule.param_scheduler[0] (LinearLR)").And.Contain("valid keys for LinearLR: type, begin, end, by_epoch, convert_to_iter_based, start_factor, end_factor"));
        Assert.That(Message("    - {type: LinearLR, by_epoch: false, begin: 500, end: 500}\n"),
            Does.Contain("config.yaml:4: schedule.param_scheduler[0] (LinearLR) end must be above begin (500)"));
        Assert.That(Message("    - {type: LinearLR, by_epoch: false, start_factor: -0.1}\n"),
            Does.Contain("schedule.param_scheduler[0] (LinearLR) start_factor must be in (0, 1]").And.Contain("got -0.1"));
        Assert.That(Message("    - {type: MultiStepLR, by_epoch: false}\n"),
            Does.Contain("schedule.param_scheduler[0] (MultiStepLR) milestones must be a non-empty list"));
        Assert.That(Message("    - {type: PolyLR, by_epoch: false, begin: 1000, end: 2000}\n"),
            Does.Contain("schedule.param_scheduler[0] (PolyLR) begins at 1000 iterations, at or past the run's end (schedule.max_iters 1000): it would never step"));
        Assert.That(Message("    - {type: PolyLR, by_epoch: false, begin: 1000}\n"),
            Does.Contain("begins at 1000 iterations, not before its end 1000 (the run's end, schedule.max_iters)"));
        Assert.That(Message("    - {type: MultiStepLR, milestones: [8, 11]}\n"),
            Does.Contain("schedule.param_scheduler[0] (MultiStepLR) counts epochs (by_epoch is true, MMEngine's default), but the run counts iterations")
                .And.Contain("write by_epoch: false, with begin/end, milestones in iterations"));
        Assert.That(Message("    - {type: MultiStepLR, milestones: [1], begin: 12, end: 13}\n", "max_epochs: 12"),
            Does.Contain("begins at 12 epochs, at or past the run's end (schedule.max_epochs 12)"));
        Assert.That(Message("    - {type: CosineAnnealingLR, by_epoch: false, eta_min: 0, eta_min_ratio: 0.1}\n"),
            Does.Contain("eta_min_ratio must be left out while eta_min is given"));
        Assert.That(Message("    - {type: LinearLR, by_epoch: false, convert_to_iter_based: true}\n"),
            Does.Contain("convert_to_iter_based must be false while by_epoch is false"));
        Assert.That(Message("    - {type: StepLR, by_epoch: false, gamma: 0.5}\n"), Does.Contain("(StepLR) step_size must be given"));
        Assert.That(Message("    - {type: ExponentialLR, by_epoch: false}\n"), Does.Contain("(ExponentialLR) gamma must be given"));
        Assert.That(Message("    - {type: CosineRestartLR, by_epoch: false, periods: [10, 20], eta_min: 0}\n"),
            Does.Contain("restart_weights must be one weight per period (2"));
        Assert.That(Message("    - {type: LinearLR, by_epoch: false, end: five}\n"),
            Does.Contain("config.yaml:4: 'schedule.param_scheduler[0].end' must be an integer, got 'five'"));
        Assert.That(Message("    []\n").Replace("\n", " "), Does.Contain("schedule.param_scheduler is an empty list"));
    }

    /// <summary>
    /// A begin or by_epoch that makes an entry impossible is refused where that key was written: the --set of one entry's key
    /// (MMEngine's --cfg-options param_scheduler.1.begin=…), or the key's own line in a block entry, not the entry's first line.
    /// </summary>
    [Test]
    public void AnEntryRefusedForItsBeginOrByEpochNamesWhereThatKeyWasWritten()
    {
        var path = Path.Combine(_root, "config.yaml");
        File.WriteAllText(path, Schedule("    - {type: LinearLR, start_factor: 1.0e-6, by_epoch: false, end: 10}\n    - {type: PolyLR, by_epoch: false, begin: 10, end: 160000}\n", "max_iters: 30"));
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(path, ["schedule.param_scheduler.1.begin=40"]))!;
        Assert.That(e.Message, Does.StartWith("--set schedule.param_scheduler.1.begin=40: schedule.param_scheduler[1] (PolyLR) begins at 40 iterations, at or past the run's end"));
        e = Assert.Throws<VimException>(() => ExperimentConfig.Load(path, ["schedule.param_scheduler.1.by_epoch=true"]))!;
        Assert.That(e.Message, Does.StartWith("--set schedule.param_scheduler.1.by_epoch=true: schedule.param_scheduler[1] (PolyLR) counts epochs"));

        // Block style: line 4 opens the entry, line 6 holds the begin that is wrong.
        var message = LoadRefused(Schedule("    - type: PolyLR\n      by_epoch: false\n      begin: 30\n", "max_iters: 30")).Message;
        Assert.That(message, Does.Contain("config.yaml:6: schedule.param_scheduler[0] (PolyLR) begins at 30 iterations, not before its end 30"));
    }

    /// <summary>
    /// An iteration-counted entry of an epoch-counted run is checked against the run's iterations once the epoch is known:
    /// 12 epochs of 10 iterations end at 120, so an entry beginning at 200 would never step.
    /// </summary>
    [Test]
    public void AnIterationEntryOfAnEpochRunIsCheckedOnceTheEpochIsKnown()
    {
        var e = Assert.Throws<VimException>(() => EpochRun(12, 10, "[{type: LinearLR, by_epoch: false, begin: 200, end: 500}]"))!;
        Assert.That(e.Message, Does.Contain("begins at 200 iterations, at or past the run's end (schedule.max_iters 120, resolved from its epochs)"));
    }

    /// <summary>
    /// A recipe's end past a shortened run is kept, as MMEngine's runner keeps it: the entry is cut short, its recursion
    /// counting to the written end. PolyLR (power 1, η 0) over [0, 2000) alone is lr·(T − k)/T with T = end − 1 = 1999, the
    /// product of MMEngine's factors (T − j)/(T − j + 1), so iteration 999 of a 1000-iteration run is lr·1000/1999, not the
    /// lr·1/999 of an entry ending with the run.
    /// </summary>
    [Test]
    public void AnEndPastTheRunIsCutShortAsMmengines()
    {
        var schedule = IterationRun(1000, "[{type: PolyLR, by_epoch: false, end: 2000}]");
        Near(schedule.LrAt(0.01, 999), 0.01 * 1000 / 1999);
        Near(schedule.LrAt(0.01, 500), 0.01 * 1499 / 1999);
        Assert.That(schedule.Chained!.Describe(), Does.Contain("PolyLR iterations [0, 2000) (cut short by the run's end at 1000, as MMEngine's)"));
    }

    /// <summary>
    /// A fixed-schedule key written beside the list, in the file or inherited, is refused naming both keys with their files
    /// and lines (hand-written defaults too: AHandWrittenDefaultBesideTheListIsRefusedButASpelledOutConfigLoads); a saved config of a
    /// list run loads again; replacing the base's schedule section with _delete_ drops the inherited key.
    /// </summary>
    [Test]
    public void AFixedScheduleKeyBesideTheListIsRefusedNamingBoth()
    {
        const string entries = "    - {type: PolyLR, by_epoch: false}\n";
        var written = LoadRefused(Schedule(entries) + "  warmup_iters: 500\n");
        Assert.That(written.Message, Does.Contain("config.yaml:5: schedule.warmup_iters (500) is written beside schedule.param_scheduler (").And.Contain("config.yaml:3)"));

        var inherited = LoadRefused("_base_: base.yaml\n" + Schedule(entries), "schedule:\n  max_iters: 1000\n  policy: multistep\n  milestones: [800]\n");
        Assert.That(inherited.Message, Does.Contain("base.yaml:3: schedule.policy (multistep) is written beside schedule.param_scheduler (").And.Contain("config.yaml:4)"));
        Assert.That(inherited.Message, Does.Contain("schedule: {_delete_: true, …}"));

        File.WriteAllText(Path.Combine(_root, "replaced.yaml"), "_base_: base.yaml\nschedule:\n  _delete_: true\n  max_iters: 1000\n  param_scheduler:\n" + entries);
        var (config, _) = ExperimentConfig.Load(Path.Combine(_root, "replaced.yaml"));
        Assert.That(config.Schedule.Policy, Is.EqualTo(LrPolicy.Poly), "the base's multistep is gone with its section");

        var saved = Path.Combine(_root, "saved.yaml");
        File.WriteAllText(saved, ConfigWriter.ToYaml(ConfigBinder.ToNode(config)));
        var reloaded = ExperimentConfig.Load(saved).Config;
        Assert.That(ConfigWriter.ToYaml(reloaded.Schedule.ParamScheduler!), Is.EqualTo(ConfigWriter.ToYaml(config.Schedule.ParamScheduler!)));
    }

    /// <summary>
    /// A fixed-schedule key written by hand with its default value (mmseg's warmup_iters: 1500, policy: poly) beside the list is
    /// refused too: it reads as "warm up 1500 iterations" and would be silently ignored. Only a fully spelled-out schedule
    /// section (a work dir's config.yaml, `vim config show --resolved`, which write every key) passes with defaults.
    /// </summary>
    [Test]
    public void AHandWrittenDefaultBesideTheListIsRefusedButASpelledOutConfigLoads()
    {
        const string entries = "    - {type: PolyLR, by_epoch: false}\n";
        var warmup = LoadRefused(Schedule(entries) + "  warmup_iters: 1500\n");
        Assert.That(warmup.Message, Does.Contain("config.yaml:5: schedule.warmup_iters (1500) is written beside schedule.param_scheduler"));
        var policy = LoadRefused(Schedule(entries) + "  policy: poly\n");
        Assert.That(policy.Message, Does.Contain("config.yaml:5: schedule.policy (poly) is written beside schedule.param_scheduler"));

        File.WriteAllText(Path.Combine(_root, "list.yaml"), Schedule(entries));
        var (config, _) = ExperimentConfig.Load(Path.Combine(_root, "list.yaml"));
        var saved = Path.Combine(_root, "saved.yaml");
        File.WriteAllText(saved, ConfigWriter.ToYaml(ConfigBinder.ToNode(config)));
        Assert.That(File.ReadAllText(saved), Does.Contain("warmup_iters: 1500"), "the saved config spells the inert defaults out");
        Assert.That(ExperimentConfig.Load(saved).Config.Schedule.ParamScheduler, Is.Not.Null);
    }

    /// <summary>`vim config show --resolved` ends with each entry's begin and end in iterations.</summary>
    [Test]
    public void ConfigShowResolvedPrintsTheListInIterations()
    {
        var path = Path.Combine(_root, "show.yaml");
        File.WriteAllText(path, Schedule("    - {type: LinearLR, start_factor: 0.001, by_epoch: false, end: 50}\n    - {type: MultiStepLR, by_epoch: false, begin: 100, milestones: [500, 800]}\n"));
        Assert.That(Vim.Tools.Commands.ConfigCommand.Show(path, [], resolved: true), Does.EndWith(
            "# schedule.param_scheduler in iterations: LinearLR iterations [0, 50); MultiStepLR iterations [100, 1000), milestones at iterations [600, 900]\n"));
    }
}
