using System.Text.Json;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

using static Vim.Tests.Engine.ParamSchedulerTestKit;

namespace Vim.Tests.Engine;

/// <summary>
/// MMEngine's momentum schedulers and OneCycleLR in schedule.param_scheduler: each momentum type against its lr twin's
/// closed form worked by hand on the momentum, an lr list mixed with momentum entries (two independent chains), mmdet3d's
/// cyclic schedule (two cosines each for lr and momentum), OneCycleLR against PyTorch's documented closed form (both anneal
/// strategies, three_phase, cycle_momentum), AdamW's bias correction with a moving beta1 as torch computes it, the trainer
/// applying and logging the momentum and resuming to the bit, `vim config lr`'s momentum column, and the refusals.
/// </summary>
public class MomentumAndOneCycleSchedulerTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-momentum-scheduler-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// Each momentum scheduler alone from momentum 0.9, by its lr twin's closed form: LinearMomentum 0.9·(0.5 + 0.5k/10);
    /// ConstantMomentum 0.45 until end − 1; StepMomentum 0.9·0.5^⌊k/3⌋; MultiStepMomentum ×0.1 from step 4;
    /// ExponentialMomentum 0.9·0.95^k; CosineAnnealingMomentum 0.85 + 0.05(1 + cos(πk/10))/2; PolyMomentum 0.8 + 0.1(1 − k/10)²;
    /// CosineRestartMomentum a cosine to 0.8 per period, restarting at 0.9 × 0.5. The lr (nothing schedules it) stays.
    /// </summary>
    [Test]
    public void EachMomentumTypeFollowsItsLrTwinsClosedForm()
    {
        const double m = 0.9;
        var linear = IterationRun(20, "[{type: LinearMomentum, start_factor: 0.5, by_epoch: false, end: 11}]");
        foreach (int k in new[] { 0, 3, 10, 15 }) Near(linear.MomentumAt(m, k)!.Value, m * (0.5 + 0.5 * Math.Min(k, 10) / 10), $"linear {k}");
        Near(linear.LrAt(0.02, 7), 0.02, "no lr scheduler: the lr stays");

        var constant = IterationRun(8, "[{type: ConstantMomentum, factor: 0.5, by_epoch: false, end: 5}]");
        Assert.That(Enumerable.Range(0, 8).Select(k => constant.MomentumAt(m, k)!.Value), Is.EqualTo(new[] { 0.45, 0.45, 0.45, 0.45, 0.9, 0.9, 0.9, 0.9 }).Within(1e-15));

        var step = IterationRun(10, "[{type: StepMomentum, step_size: 3, gamma: 0.5, by_epoch: false}]");
        foreach (int k in Enumerable.Range(0, 10)) Near(step.MomentumAt(m, k)!.Value, m * Math.Pow(0.5, k / 3), $"step {k}");

        var multistep = IterationRun(10, "[{type: MultiStepMomentum, milestones: [4], by_epoch: false}]");
        Near(multistep.MomentumAt(m, 3)!.Value, 0.9);
        Near(multistep.MomentumAt(m, 4)!.Value, 0.09);

        var exponential = IterationRun(10, "[{type: ExponentialMomentum, gamma: 0.95, by_epoch: false}]");
        Near(exponential.MomentumAt(m, 6)!.Value, m * Math.Pow(0.95, 6));

        var cosine = IterationRun(11, "[{type: CosineAnnealingMomentum, T_max: 10, eta_min: 0.85, by_epoch: false}]");
        foreach (int k in new[] { 0, 2, 5, 9, 10 }) Near(cosine.MomentumAt(m, k)!.Value, 0.85 + 0.05 * (1 + Math.Cos(Math.PI * k / 10)) / 2, $"cosine {k}");

        var poly = IterationRun(11, "[{type: PolyMomentum, eta_min: 0.8, power: 2.0, by_epoch: false}]");
        foreach (int k in new[] { 0, 4, 10 }) Near(poly.MomentumAt(m, k)!.Value, 0.8 + 0.1 * Math.Pow(1 - k / 10.0, 2), $"poly {k}");

        var restart = IterationRun(12, "[{type: CosineRestartMomentum, periods: [4, 8], restart_weights: [1, 0.5], eta_min: 0.4, by_epoch: false}]");
        Near(restart.MomentumAt(m, 2)!.Value, 0.4 + 0.5 * 0.5);
        Near(restart.MomentumAt(m, 4)!.Value, 0.45, "restart at weight 0.5 of the initial 0.9");
        Near(restart.MomentumAt(m, 8)!.Value, 0.4 + (0.45 - 0.4) * 0.5);
    }

    /// <summary>
    /// Lr and momentum entries in one list (MMEngine mixes them) form two chains that do not touch: the lr of
    /// [LinearLR, LinearMomentum, CosineAnnealingLR, CosineAnnealingMomentum] equals the lr of the list without the momentum
    /// entries at every iteration, and the momentum equals the momentum-only list's; without any momentum entry the schedule
    /// reports none (the optimiser keeps its own).
    /// </summary>
    [Test]
    public void LrAndMomentumEntriesInOneListChainIndependently()
    {
        const string lr = "{type: LinearLR, start_factor: 0.5, by_epoch: false, end: 4}, {type: CosineAnnealingLR, eta_min: 0.0, begin: 4, by_epoch: false}";
        const string momentum = "{type: LinearMomentum, start_factor: 0.9, by_epoch: false, end: 6}, {type: CosineAnnealingMomentum, eta_min: 0.85, begin: 6, by_epoch: false}";
        var mixed = IterationRun(20, $"[{lr.Split("}, ")[0]}}}, {momentum.Split("}, ")[0]}}}, {lr.Split("}, ")[1]}, {momentum.Split("}, ")[1]}]");
        var lrOnly = IterationRun(20, $"[{lr}]");
        var momentumOnly = IterationRun(20, $"[{momentum}]");
        foreach (int k in Enumerable.Range(0, 20))
        {
            Assert.That(mixed.LrAt(0.01, k), Is.EqualTo(lrOnly.LrAt(0.01, k)), $"lr at {k}");
            Assert.That(mixed.MomentumAt(0.95, k), Is.EqualTo(momentumOnly.MomentumAt(0.95, k)), $"momentum at {k}");
        }
        Near(mixed.MomentumAt(0.95, 0)!.Value, 0.95 * 0.9);
        Near(mixed.MomentumAt(0.95, 5)!.Value, 0.95);
        Near(mixed.MomentumAt(0.95, 6 + 7)!.Value, 0.85 + 0.1 * (1 + Math.Cos(Math.PI * 7 / 14)) / 2, "T_max = end − begin = 14");
        Assert.That(lrOnly.MomentumAt(0.95, 3), Is.Null);
        Assert.That(lrOnly.SchedulesMomentum, Is.False);
    }

    /// <summary>
    /// mmdet3d's cyclic schedule (cyclic-40e, shortened to 10 epochs of 2 iterations), AdamW betas (0.95, 0.99): momentum
    /// CosineAnnealingMomentum(T_max 4, eta_min 0.85/0.95, [0, 4)) then CosineAnnealingMomentum(T_max 6, eta_min 1, [4, 10)),
    /// both by epoch converted to iterations. By hand: m(k) = e + (0.95 − e)(1 + cos(πk/8))/2 for k &lt; 8 with e = 0.85/0.95;
    /// the second cosine starts from m(7) (its first step keeps the value) and climbs to 1:
    /// m(8 + j) = 1 + (m(7) − 1)(1 + cos(πj/12))/2. The lr's cosines beside it: lr·10 at iteration 8 (the first lr cosine's
    /// floor is reached at its T_max, which its end cuts off at 7, so 8 holds 7's value).
    /// </summary>
    [Test]
    public void TheMmdet3dCyclicScheduleAtItsTurns()
    {
        const double lr = 1e-4, e = 0.85 / 0.95;
        var schedule = EpochRun(10, 2, $$"""
            [{type: CosineAnnealingLR, T_max: 4, eta_min: {{(lr * 10).ToString("R", System.Globalization.CultureInfo.InvariantCulture)}}, begin: 0, end: 4, by_epoch: true, convert_to_iter_based: true},
             {type: CosineAnnealingLR, T_max: 6, eta_min: 1.0e-8, begin: 4, end: 10, by_epoch: true, convert_to_iter_based: true},
             {type: CosineAnnealingMomentum, T_max: 4, eta_min: {{e.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}}, begin: 0, end: 4, by_epoch: true, convert_to_iter_based: true},
             {type: CosineAnnealingMomentum, T_max: 6, eta_min: 1, begin: 4, end: 10, by_epoch: true, convert_to_iter_based: true}]
            """);
        double Momentum(int k) => schedule.MomentumAt(0.95, k)!.Value;
        foreach (int k in new[] { 0, 3, 4, 7 }) Near(Momentum(k), e + (0.95 - e) * (1 + Math.Cos(Math.PI * k / 8)) / 2, $"first momentum cosine at {k}");
        double m7 = e + (0.95 - e) * (1 + Math.Cos(Math.PI * 7 / 8)) / 2;
        foreach (int j in new[] { 0, 6, 11 }) Near(Momentum(8 + j), 1 + (m7 - 1) * (1 + Math.Cos(Math.PI * j / 12)) / 2, $"second momentum cosine at {8 + j}");
        Near(schedule.LrAt(lr, 4), lr * 10 + (lr - lr * 10) * 0.5, "the lr rises to 10·lr over the first cosine");
    }

    /// <summary>PyTorch's OneCycleLR annealing functions, as its documentation defines them.</summary>
    private static double Cos(double start, double end, double pct) => end + (start - end) / 2 * (Math.Cos(Math.PI * pct) + 1);

    private static double Linear(double start, double end, double pct) => (end - start) * pct + start;

    /// <summary>
    /// OneCycleLR(eta_max 0.1, total_steps 100 = end − begin) against PyTorch's documented closed form: the lr starts at
    /// 0.1/25 = 0.004, rises to 0.1 at step pct_start·T − 1 = 29, falls to 0.004/1e4 at 99; cycle_momentum runs 0.95 → 0.85
    /// → 0.95. Linear anneal, and three_phase (0.004 → 0.1 by 29, back to 0.004 by 58, to the floor by 99; the momentum
    /// 0.95 → 0.85 → 0.95 and then flat). It ignores the chain: it is the same after a LinearLR.
    /// </summary>
    [Test]
    public void OneCycleMatchesPytorchsClosedForm()
    {
        const double max = 0.1, initial = max / 25, floor = initial / 1e4;
        var cos = IterationRun(100, "[{type: OneCycleLR, eta_max: 0.1, by_epoch: false, cycle_momentum: true}]");
        Near(cos.LrAt(0.02, 0), initial, "starts at eta_max / div_factor, whatever the optimiser's lr");
        Near(cos.LrAt(0.02, 10), Cos(initial, max, 10.0 / 29));
        Near(cos.LrAt(0.02, 29), max);
        Near(cos.LrAt(0.02, 64), Cos(max, floor, 35.0 / 70));
        Near(cos.LrAt(0.02, 99), floor);
        Near(cos.MomentumAt(0.9, 0)!.Value, 0.95);
        Near(cos.MomentumAt(0.9, 10)!.Value, Cos(0.95, 0.85, 10.0 / 29));
        Near(cos.MomentumAt(0.9, 29)!.Value, 0.85);
        Near(cos.MomentumAt(0.9, 64)!.Value, 0.9);
        Near(cos.MomentumAt(0.9, 99)!.Value, 0.95);

        var linear = IterationRun(100, "[{type: OneCycleLR, eta_max: 0.1, anneal_strategy: linear, pct_start: 0.25, div_factor: 10, final_div_factor: 100, by_epoch: false}]");
        Near(linear.LrAt(0.02, 12), Linear(0.01, max, 12.0 / 24));
        Near(linear.LrAt(0.02, 50), Linear(max, 1e-4, 26.0 / 75));
        Assert.That(linear.MomentumAt(0.9, 50), Is.Null, "MMEngine's OneCycleLR leaves the momentum alone");

        var three = IterationRun(100, "[{type: OneCycleLR, eta_max: 0.1, three_phase: true, anneal_strategy: linear, cycle_momentum: true, by_epoch: false}]");
        Near(three.LrAt(0.02, 44), Linear(max, initial, 15.0 / 29));
        Near(three.LrAt(0.02, 58), initial);
        Near(three.LrAt(0.02, 80), Linear(initial, floor, 22.0 / 41));
        Near(three.MomentumAt(0.9, 44)!.Value, Linear(0.85, 0.95, 15.0 / 29));
        Near(three.MomentumAt(0.9, 80)!.Value, 0.95);

        var chained = IterationRun(100, "[{type: LinearLR, start_factor: 0.5, by_epoch: false, end: 10}, {type: OneCycleLR, eta_max: 0.1, by_epoch: false}]");
        Near(chained.LrAt(0.02, 5), Cos(initial, max, 5.0 / 29), "closed form: the LinearLR before it does not enter");
    }

    /// <summary>
    /// FRNet's recipe: OneCycleLR(total_steps 5 epochs, by_epoch, convert_to_iter_based) over 5 epochs of 10 iterations is a
    /// cycle of 50 iterations (MMEngine's build_iter_from_epoch scales total_steps); a CosineRestartLR after a OneCycleLR
    /// restarts from OneCycleLR's eta_max / div_factor, the initial lr MMEngine's OneCycleLR writes into every group.
    /// </summary>
    [Test]
    public void OneCycleConvertedToIterationsAndTheInitialLrItLeaves()
    {
        var schedule = EpochRun(5, 10, "[{type: OneCycleLR, eta_max: 0.01, total_steps: 5, pct_start: 0.2, final_div_factor: 100, by_epoch: true, convert_to_iter_based: true}]");
        Near(schedule.LrAt(0.01, 9), 0.01, "the peak at pct_start · 50 − 1 = 9");
        Near(schedule.LrAt(0.01, 49), 0.01 / 25 / 100);
        Assert.That(schedule.Chained!.Describe(), Does.Contain("OneCycleLR iterations [0, 50), total_steps 50 iterations"));

        var restart = IterationRun(20, "[{type: OneCycleLR, eta_max: 0.1, by_epoch: false, end: 10}, {type: CosineRestartLR, periods: [10], eta_min: 0, begin: 10, by_epoch: false}]");
        Near(restart.LrAt(0.02, 10), 0.1 / 25, "not the optimiser's 0.02");
    }

    /// <summary>
    /// AdamW with a beta1 that changes between steps, against torch.optim.AdamW's documented update computed by hand on one
    /// weight: m_t = β1_t·m_{t−1} + (1 − β1_t)·g_t, v_t = β2·v_{t−1} + (1 − β2)·g_t², and
    /// w −= lr·(m_t / (1 − β1_t^t)) / (√(v_t / (1 − β2^t)) + ε) after the decoupled decay w·(1 − lr·λ): the current beta1
    /// to the power of the step, not a product over the betas the steps took.
    /// </summary>
    [Test]
    public void AdamWBiasCorrectionUsesTheCurrentBeta1()
    {
        using var weight = nn.Parameter(tensor(new[] { 1.0 }, dtype: ScalarType.Float64));
        var groups = new[] { new ParameterGroup("all", [("w", weight)], WeightDecay: 0.1, LrScale: 1) };
        using var optimizer = new AdamWOptimizer(groups, beta1: 0.9, beta2: 0.999);
        double w = 1, m = 0, v = 0;
        var steps = new[] { (Grad: 0.5, Beta1: 0.95), (Grad: -0.2, Beta1: 0.85), (Grad: 0.3, Beta1: 0.9) };
        const double lr = 0.01;
        for (int t = 1; t <= steps.Length; t++)
        {
            var (g, beta1) = steps[t - 1];
            weight.grad = tensor(new[] { g }, dtype: ScalarType.Float64);
            optimizer.Step(_ => lr, beta1);
            w *= 1 - lr * 0.1;
            m = beta1 * m + (1 - beta1) * g;
            v = 0.999 * v + 0.001 * g * g;
            w -= lr * (m / (1 - Math.Pow(beta1, t))) / (Math.Sqrt(v / (1 - Math.Pow(0.999, t))) + 1e-8);
            Assert.That(weight.data<double>()[0], Is.EqualTo(w).Within(1e-14), $"step {t}");
        }
    }

    /// <summary>
    /// SGD with a scheduled momentum, against torch.optim.SGD's update by hand: b_1 = g_1, b_t = μ_t·b_{t−1} + g_t, w −= lr·b_t.
    /// </summary>
    [Test]
    public void SgdTakesTheScheduledMomentum()
    {
        using var weight = nn.Parameter(tensor(new[] { 1.0 }, dtype: ScalarType.Float64));
        var groups = new[] { new ParameterGroup("all", [("w", weight)], WeightDecay: 0, LrScale: 1) };
        using var optimizer = new SgdOptimizer(groups, momentum: 0.9);
        double w = 1, b = 0;
        var steps = new[] { (Grad: 0.5, Momentum: 0.8), (Grad: -0.2, Momentum: 0.5), (Grad: 0.3, Momentum: 0.7) };
        for (int t = 1; t <= steps.Length; t++)
        {
            var (g, momentum) = steps[t - 1];
            weight.grad = tensor(new[] { g }, dtype: ScalarType.Float64);
            optimizer.Step(_ => 0.1, momentum);
            b = t == 1 ? g : momentum * b + g;
            w -= 0.1 * b;
            Assert.That(weight.data<double>()[0], Is.EqualTo(w).Within(1e-15), $"step {t}");
        }
    }

    private static ExperimentConfig ToyConfig(string schedulers, OptimizerConfig optimizer) => new()
    {
        Optimizer = optimizer,
        Schedule = new ScheduleConfig { MaxEpochs = 3, ParamScheduler = List(schedulers) },
        Train = new TrainConfig { LogInterval = 4, EvalInterval = 1, CheckpointInterval = 1, KeepLast = 5 },
        Runtime = new RuntimeConfig { Seed = 3 },
    };

    /// <summary>
    /// The toy trainer (3 epochs of 8 iterations) with AdamW betas (0.95, 0.999) and a CosineAnnealingMomentum(eta_min 0.85)
    /// stepped at epoch ends beside a LinearLR warmup: every optimiser step takes the momentum the schedule gives
    /// (0.95, then 0.85 + 0.1·0.75, then 0.85 + 0.1·0.25 by epoch), log.jsonl carries it as "momentum" at each log record, and
    /// a run interrupted after iteration 11 and resumed ends with the same weights, to the bit, as the uninterrupted one.
    /// The same holds for SGD with OneCycleLR's cycle_momentum.
    /// </summary>
    [TestCase("[{type: LinearLR, start_factor: 0.1, by_epoch: false, end: 5}, {type: CosineAnnealingMomentum, eta_min: 0.85}]", "adamw")]
    [TestCase("[{type: OneCycleLR, eta_max: 0.02, by_epoch: false, cycle_momentum: true}]", "sgd")]
    public void TheTrainerAppliesAndLogsTheMomentumAndResumesToTheBit(string schedulers, string optimizerType)
    {
        set_num_threads(1);
        var optimizer = optimizerType == "sgd"
            ? new OptimizerConfig { Type = OptimizerKind.Sgd, Lr = 0.01, WeightDecay = 0.01, Momentum = 0.9 }
            : new OptimizerConfig { Lr = 0.01, WeightDecay = 0.01, Betas = [0.95, 0.999] };
        var config = ToyConfig(schedulers, optimizer);
        var schedule = new LrSchedule(EpochSchedule.Resolve(config, 8).Config.Schedule);
        double initial = OptimizerFactory.InitialMomentum(optimizer);
        if (optimizerType == "adamw")
        {
            double[] byEpoch = [0.95, 0.85 + 0.1 * 0.75, 0.85 + 0.1 * 0.25];
            foreach (int k in Enumerable.Range(0, 24)) Near(schedule.MomentumAt(initial, k)!.Value, byEpoch[k / 8], $"iteration {k}");
        }
        else Near(schedule.MomentumAt(initial, 0)!.Value, 0.95, "OneCycleLR's max_momentum at its first step");

        var straightDir = Path.Combine(_root, "straight");
        using var straight = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(straight, config, straightDir, "cfg", TextWriter.Null).Run(null);
        var logged = File.ReadLines(Path.Combine(straightDir, TrainingLogWriter.LocalFileName))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(r => r.TryGetProperty("loss", out _))
            .Select(r => (Iteration: r.GetProperty("iter").GetInt32(), Momentum: r.GetProperty("momentum").GetDouble()))
            .ToList();
        Assert.That(logged.Select(r => r.Iteration), Is.EqualTo(new[] { 4, 8, 12, 16, 20, 24 }));
        foreach (var (iteration, momentum) in logged)
            Assert.That(momentum, Is.EqualTo(schedule.MomentumAt(initial, iteration - 1)!.Value), $"logged at {iteration}");

        using var stop = new CancellationTokenSource();
        TrainingResult partial;
        using (var first = new ToyRegressionTask())
            partial = new Trainer<(Tensor, Tensor)>(first, config, Path.Combine(_root, "resumed"), "cfg", TextWriter.Null)
            {
                AfterOptimizerStep = (iteration, _) => { if (iteration == 11) stop.Cancel(); },
            }.Run(null, stop.Token);
        Assert.That(partial.Iteration, Is.EqualTo(12));
        using var resumed = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(resumed, config, Path.Combine(_root, "resumed"), "cfg", TextWriter.Null).Run(partial.LastCheckpoint!);
        Assert.That(resumed.Weights(), Is.EqualTo(straight.Weights()), "bit-identical weights");

        // A momentum that stayed at the optimiser's own would train differently: the schedule is what the steps took.
        var unscheduled = ToyConfig(optimizerType == "sgd" ? "[{type: OneCycleLR, eta_max: 0.02, by_epoch: false}]" : "[{type: LinearLR, start_factor: 0.1, by_epoch: false, end: 5}]", optimizer);
        using var plain = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(plain, unscheduled, Path.Combine(_root, "plain"), "cfg", TextWriter.Null).Run(null);
        Assert.That(plain.Weights(), Is.Not.EqualTo(straight.Weights()));
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

    private static string Schedule(string entries, string optimizer = "") =>
        $"{optimizer}schedule:\n  max_iters: 100\n  param_scheduler:\n{entries}";

    [Test]
    public void BadMomentumAndOneCycleEntriesAreRefusedByKey()
    {
        string Message(string entries, string optimizer = "") => LoadRefused(Schedule(entries, optimizer)).Message;
        Assert.That(Message("    - {type: OneCycleLR, by_epoch: false}\n"),
            Does.Contain("config.yaml:4: schedule.param_scheduler[0] (OneCycleLR) eta_max must be given"));
        Assert.That(Message("    - {type: OneCycleLR, by_epoch: false, max_lr: 0.1}\n"),
            Does.Contain("config.yaml:4: schedule.param_scheduler[0] (OneCycleLR) takes its peak lr as eta_max"));
        Assert.That(Message("    - {type: OneCycleLR, by_epoch: false, eta_max: 0.1, anneal_strategy: cosine}\n"),
            Does.Contain("(OneCycleLR) anneal_strategy must be cos or linear, got cosine"));
        Assert.That(Message("    - {type: OneCycleLR, by_epoch: false, eta_max: 0.1, base_momentum: 0.8}\n"),
            Does.Contain("(OneCycleLR) base_momentum must be left out while cycle_momentum is false"));
        Assert.That(Message("    - {type: OneCycleLR, by_epoch: false, eta_max: 0.1, total_steps: 50}\n"),
            Does.Contain("(OneCycleLR) total_steps is 50 iterations, but the run steps it 100 times"));
        Assert.That(Message("    - {type: OneCycleLR, by_epoch: false, eta_max: 0.1, pct_start: 0.01}\n"),
            Does.Contain("pct_start 0.01 over total_steps 100 leaves a phase of no steps"));
        Assert.That(Message("    - {type: CosineAnnealingMomentum, by_epoch: false, eta_min: 0.85, milestones: [3]}\n"),
            Does.Contain("unknown key 'milestones' in schedule.param_scheduler[0] (CosineAnnealingMomentum)").And.Contain("T_max, eta_min, eta_min_ratio"));
        Assert.That(Message("    - {type: StepMomentum, by_epoch: false}\n"), Does.Contain("(StepMomentum) step_size must be given"));
        Assert.That(Message("    - {type: LinearMomentum, by_epoch: false, end: 10}\n", "optimizer:\n  type: sgd\n  momentum: 0.0\n"),
            Does.Contain("schedule.param_scheduler[0] (LinearMomentum) schedules SGD's momentum, but optimizer.momentum is 0"));
        Assert.That(Message("    - {type: OneCycleLR, by_epoch: false, eta_max: 0.1, cycle_momentum: true}\n    - {type: LinearMomentum, by_epoch: false, end: 10}\n"),
            Does.Contain("(OneCycleLR) cycle_momentum and schedule.param_scheduler[1] (LinearMomentum)").And.Contain("both set the momentum"));
        Assert.That(Message("    - {type: LinearMomentum, end: 10}\n"),
            Does.Contain("(LinearMomentum) counts epochs (by_epoch is true, MMEngine's default), but the run counts iterations"));
    }

    /// <summary>
    /// `vim config lr`'s CSV gains a momentum column holding the schedule's momentum exactly (round-trip "R" text) when a
    /// momentum scheduler is configured, and its table a momentum row; without one there is neither.
    /// </summary>
    [Test]
    public void ThePreviewShowsTheMomentum()
    {
        var config = new ExperimentConfig
        {
            Optimizer = new OptimizerConfig { Lr = 0.02, Betas = [0.95, 0.999] },
            Schedule = new ScheduleConfig { MaxIters = 12, ParamScheduler = List("[{type: PolyLR, by_epoch: false}, {type: PolyMomentum, eta_min: 0.85, by_epoch: false}]") },
            Train = new TrainConfig { EvalInterval = 0, CheckpointInterval = 12 },
        };
        using var task = new ToyRegressionTask(dropout: 0);
        var preview = new LrPreview(config, ParameterGroupRules.Build(task.Model, config.Optimizer, task.NumBackboneLayers), processes: 1);
        var rows = preview.ToCsv(preview.Groups, [0, 6, 11]).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.That(rows[0], Does.EndWith(",momentum (betas[0])"));
        Assert.That(double.Parse(rows[2].Split(',')[^1], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(0.85 + 0.1 * (1 - 6.0 / 11)).Within(1e-15));
        Assert.That(preview.Table(preview.Groups), Does.Contain("| momentum (betas[0]), every group |"));

        config.Schedule.ParamScheduler = List("[{type: PolyLR, by_epoch: false}]");
        var lrOnly = new LrPreview(config, ParameterGroupRules.Build(task.Model, config.Optimizer, task.NumBackboneLayers), processes: 1);
        Assert.That(lrOnly.ToCsv(lrOnly.Groups, [0]), Does.Not.Contain("momentum"));
    }
}
