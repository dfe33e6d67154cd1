using System.Globalization;

namespace Vim.Core.Config;

/// <summary>
/// The schedulers of MMEngine's <c>param_scheduler</c> list that schedule.param_scheduler accepts (its <c>type</c>): the lr
/// ones, the momentum ones (MMEngine's momentum_scheduler.py: each the lr one's rule applied to SGD's momentum or to
/// Adam's/AdamW's betas[0]; QuadraticWarmupMomentum is mmdet's), OneCycleLR, and ReduceOnPlateauLR / ReduceOnPlateauMomentum.
/// </summary>
public enum ParamSchedulerType
{
    LinearLR,
    ConstantLR,
    StepLR,
    MultiStepLR,
    ExponentialLR,
    CosineAnnealingLR,
    PolyLR,
    QuadraticWarmupLR,
    CosineRestartLR,
    LinearMomentum,
    ConstantMomentum,
    StepMomentum,
    MultiStepMomentum,
    ExponentialMomentum,
    CosineAnnealingMomentum,
    PolyMomentum,
    CosineRestartMomentum,
    QuadraticWarmupMomentum,
    OneCycleLR,
    ReduceOnPlateauLR,
    ReduceOnPlateauMomentum,
}

/// <summary>The optimiser setting a scheduler sets: MMEngine's param_name.</summary>
public enum ScheduledParameter
{
    Lr,
    /// <summary>SGD's momentum, or Adam's/AdamW's betas[0] (MMEngine's MomentumSchedulerMixin).</summary>
    Momentum,
}

/// <summary>
/// One entry of schedule.param_scheduler as written: MMEngine's keys and defaults (mmengine/optim/scheduler/param_scheduler.py;
/// QuadraticWarmupLR is mmdet's), in the unit the entry counts: epochs while <see cref="ByEpoch"/>, else iterations.
/// Steps (begin, end, milestones, step_size, T_max, periods) count from the run's start for begin/end and from
/// <see cref="Begin"/> for the rest, as MMEngine's last_step does.
/// </summary>
public sealed record ParamSchedulerEntry
{
    public required int Index { get; init; }
    public required ParamSchedulerType Type { get; init; }
    /// <summary>Where the entry was written, for messages.</summary>
    public required ConfigSource Source { get; init; }
    /// <summary>Where begin and by_epoch were written (a --set of one key names the --set), else <see cref="Source"/>.</summary>
    public required ConfigSource BeginSource { get; init; }
    public required ConfigSource ByEpochSource { get; init; }
    public int Begin { get; init; }
    /// <summary>Null: the run's end (MMEngine's runner default: max_epochs for a by_epoch scheduler, max_iters otherwise).</summary>
    public int? End { get; init; }
    public bool ByEpoch { get; init; } = true;
    public bool ConvertToIterBased { get; init; }
    public double StartFactor { get; init; } = 1.0 / 3;
    public double EndFactor { get; init; } = 1.0;
    public double Factor { get; init; } = 1.0 / 3;
    public int StepSize { get; init; }
    public IReadOnlyList<int> Milestones { get; init; } = [];
    public double Gamma { get; init; } = 0.1;
    /// <summary>Null: end − begin (MMEngine ≥ 0.7's default).</summary>
    public int? TMax { get; init; }
    public double? EtaMin { get; init; }
    public double? EtaMinRatio { get; init; }
    public double Power { get; init; } = 1.0;
    public IReadOnlyList<int> Periods { get; init; } = [];
    public IReadOnlyList<double> RestartWeights { get; init; } = [1.0];
    /// <summary>OneCycleLR's peak lr, the same for every optimiser group (MMEngine's float eta_max; lr_mult does not scale it).</summary>
    public double? EtaMax { get; init; }
    /// <summary>OneCycleLR's cycle length in the entry's steps; null: end − begin (MMEngine's).</summary>
    public int? TotalSteps { get; init; }
    public double PctStart { get; init; } = 0.3;
    public bool AnnealLinearly { get; init; }
    public double DivFactor { get; init; } = 25;
    public double FinalDivFactor { get; init; } = 1e4;
    public bool ThreePhase { get; init; }
    /// <summary>
    /// OneCycleLR also cycles the momentum between max_momentum and base_momentum, as PyTorch's OneCycleLR does by default;
    /// off by default because MMEngine's OneCycleLR schedules the lr alone (it asserts param_name == 'lr').
    /// </summary>
    public bool CycleMomentum { get; init; }
    public double BaseMomentum { get; init; } = 0.85;
    public double MaxMomentum { get; init; } = 0.95;
    /// <summary>ReduceOnPlateauLR's (and ReduceOnPlateauMomentum's, whose keys are the same) watched metric, one the task's evaluation returns (MMEngine's default 'loss' is none of ours).</summary>
    public string Monitor { get; init; } = "loss";
    public ConfigSource? MonitorSource { get; init; }
    /// <summary>ReduceOnPlateauLR's rule: true for 'greater' (higher is better), false for MMEngine's default 'less'.</summary>
    public bool GreaterIsBetter { get; init; }
    public int Patience { get; init; } = 10;
    public double Threshold { get; init; } = 1e-4;
    /// <summary>ReduceOnPlateauLR's threshold_rule: true for 'abs', false for MMEngine's default 'rel'.</summary>
    public bool AbsoluteThreshold { get; init; }
    public int Cooldown { get; init; }
    public double MinValue { get; init; }
    public double Eps { get; init; } = 1e-8;

    /// <summary>The lr scheduler whose rule this entry applies (a momentum scheduler's lr twin; an lr scheduler itself).</summary>
    public ParamSchedulerType Rule => RuleOf(Type);

    /// <summary>The lr scheduler whose rule <paramref name="type"/> applies.</summary>
    public static ParamSchedulerType RuleOf(ParamSchedulerType type) => type switch
    {
        ParamSchedulerType.LinearMomentum => ParamSchedulerType.LinearLR,
        ParamSchedulerType.ConstantMomentum => ParamSchedulerType.ConstantLR,
        ParamSchedulerType.StepMomentum => ParamSchedulerType.StepLR,
        ParamSchedulerType.MultiStepMomentum => ParamSchedulerType.MultiStepLR,
        ParamSchedulerType.ExponentialMomentum => ParamSchedulerType.ExponentialLR,
        ParamSchedulerType.CosineAnnealingMomentum => ParamSchedulerType.CosineAnnealingLR,
        ParamSchedulerType.PolyMomentum => ParamSchedulerType.PolyLR,
        ParamSchedulerType.CosineRestartMomentum => ParamSchedulerType.CosineRestartLR,
        ParamSchedulerType.QuadraticWarmupMomentum => ParamSchedulerType.QuadraticWarmupLR,
        ParamSchedulerType.ReduceOnPlateauMomentum => ParamSchedulerType.ReduceOnPlateauLR,
        _ => type,
    };

    /// <summary>Whether the entry sets <paramref name="parameter"/>: the lr for the lr schedulers, the momentum for the momentum ones; OneCycleLR both with cycle_momentum.</summary>
    public bool Sets(ScheduledParameter parameter) => parameter switch
    {
        ScheduledParameter.Lr => !IsMomentumScheduler,
        _ => IsMomentumScheduler || (Type == ParamSchedulerType.OneCycleLR && CycleMomentum),
    };

    /// <summary>One of the *Momentum types, which schedule the momentum alone (OneCycleLR's cycle_momentum is not one).</summary>
    public bool IsMomentumScheduler => Rule != Type;

    /// <summary>A ReduceOnPlateauLR or ReduceOnPlateauMomentum: stepped by evaluations, not by iterations.</summary>
    public bool IsPlateau => Rule == ParamSchedulerType.ReduceOnPlateauLR;

    /// <summary>What messages call the value it sets: "lr", or "momentum" for a momentum scheduler (OneCycleLR sets the lr first).</summary>
    public string ParameterName => Sets(ScheduledParameter.Lr) ? "lr" : "momentum";

    /// <summary>"schedule.param_scheduler[1] (MultiStepLR)", how messages name the entry.</summary>
    public string Name => $"{ParamSchedulerList.Key}[{Index.ToString(CultureInfo.InvariantCulture)}] ({Type})";

    /// <summary>An absolute floor, or a fraction of each group's initial lr (eta_min_ratio); 0 when neither is written.</summary>
    public double EtaMinFor(double initialLr) => EtaMinRatio is { } ratio ? initialLr * ratio : EtaMin ?? 0.0;
}

/// <summary>
/// Reads and checks schedule.param_scheduler, kept as written (<see cref="ScheduleConfig.ParamScheduler"/> is a
/// <see cref="ConfigList"/>) so every refusal names the file, line, entry and key, and a work dir's config.yaml writes it back
/// unchanged. <c>Engine.ChainedParamSchedule</c> turns the entries into iterations and runs MMEngine's recursion.
/// </summary>
public static class ParamSchedulerList
{
    public const string Key = "schedule.param_scheduler";

    /// <summary>The fixed schedule's keys, inert while a param_scheduler list sets the lr.</summary>
    public static readonly IReadOnlyList<string> ReplacedKeys = ["policy", "warmup_iters", "warmup_ratio", "power", "min_lr", "milestones", "gamma"];

    private static readonly string[] CommonKeys = ["type", "begin", "end", "by_epoch", "convert_to_iter_based"];

    private static string[] KeysOf(ParamSchedulerType type) => ParamSchedulerEntry.RuleOf(type) switch
    {
        ParamSchedulerType.LinearLR => ["start_factor", "end_factor"],
        ParamSchedulerType.ConstantLR => ["factor"],
        ParamSchedulerType.StepLR => ["step_size", "gamma"],
        ParamSchedulerType.MultiStepLR => ["milestones", "gamma"],
        ParamSchedulerType.ExponentialLR => ["gamma"],
        ParamSchedulerType.CosineAnnealingLR => ["T_max", "eta_min", "eta_min_ratio"],
        ParamSchedulerType.PolyLR => ["eta_min", "power"],
        ParamSchedulerType.CosineRestartLR => ["periods", "restart_weights", "eta_min", "eta_min_ratio"],
        ParamSchedulerType.ReduceOnPlateauLR => ["monitor", "rule", "factor", "patience", "threshold", "threshold_rule", "cooldown", "min_value", "eps"],
        ParamSchedulerType.OneCycleLR => ["eta_max", "total_steps", "pct_start", "anneal_strategy", "div_factor", "final_div_factor", "three_phase",
            "cycle_momentum", "base_momentum", "max_momentum"],
        _ => [],
    };

    /// <summary>
    /// The entries of <paramref name="schedule"/>'s param_scheduler, checked (null where it is unset): unknown types and keys,
    /// values out of MMEngine's ranges, begin ≥ end, a by_epoch entry in an iteration-counted run, and an entry beginning at or past the
    /// run's end where the entry's unit is known (an iteration-counted entry of an epoch-counted run is checked once the epoch is
    /// known, by <c>Engine.ChainedParamSchedule</c>).
    /// </summary>
    public static IReadOnlyList<ParamSchedulerEntry>? Read(ScheduleConfig schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (schedule.ParamScheduler is not { } list) return null;
        if (list.Items.Count == 0)
            throw new VimException($"{list.Source}: {Key} is an empty list; leave it out (or null) for the fixed schedule (schedule.policy), " +
                $"or list schedulers, e.g. [{{type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500}}, {{type: PolyLR, by_epoch: false}}]");
        var entries = list.Items.Select((node, index) => ReadEntry(node, index)).ToList();
        var (epochs, iterations) = RunLength(schedule);
        foreach (var entry in entries) CheckAgainstRun(entry, epochs, iterations);
        return entries;
    }

    /// <summary>The run's length in the units known before its epoch is: epochs of an epoch-counted run (or of one resolved against its epoch), iterations of an iteration-counted one.</summary>
    private static (int? Epochs, int? Iterations) RunLength(ScheduleConfig schedule)
    {
        if (schedule.MaxEpochs is { } epochs) return (epochs, null);
        int iterations = schedule.IterationCount();
        return schedule.EpochLength is { } perEpoch ? (iterations / perEpoch, iterations) : (null, iterations);
    }

    /// <summary>
    /// Refuses a by_epoch entry in an iteration-counted run (which has no epochs to step at), and an entry that would never
    /// step (beginning at or past the run's end, in the entry's unit where that length is known; an end past the run is kept); <paramref name="epochs"/> null: the run counts iterations.
    /// </summary>
    public static void CheckAgainstRun(ParamSchedulerEntry entry, int? epochs, int? iterations)
    {
        if (entry.IsPlateau)
        {
            // MMEngine counts its begin and end in finished training epochs, which an iteration-counted run never has.
            if (epochs is null && (entry.Begin != 0 || entry.End is not null))
                throw new VimException($"{entry.BeginSource}: {entry.Name} begin/end count finished epochs, and the run counts iterations " +
                    $"(schedule.max_iters {iterations}): leave begin and end out (it then watches every evaluation)");
            if (epochs is null) return;
        }
        if (entry.ByEpoch && epochs is null)
            throw new VimException($"{entry.ByEpochSource}: {entry.Name} counts epochs (by_epoch is true, MMEngine's default), but the run counts iterations " +
                $"(schedule.max_iters {iterations}): write by_epoch: false, with begin/end{StepKeys(entry.Rule)} in iterations, or count the run in " +
                "epochs (schedule.max_epochs)");
        var (length, unit, lengthKey) = entry.ByEpoch ? (epochs, "epochs", "schedule.max_epochs") : (iterations, "iterations", "schedule.max_iters");
        if (length is not { } runLength) return;
        int end = entry.End ?? runLength;
        // An end past the run is kept, as MMEngine's runner keeps it: the entry is cut short where training stops, its
        // recursion still counting to the written end (a recipe's PolyLR end 160000 in a shortened smoke run decays as the
        // recipe's would). One that begins at or past the run's end would never step, which no one means.
        if (entry.End is not null && entry.Begin >= runLength)
            throw new VimException($"{entry.BeginSource}: {entry.Name} begins at {entry.Begin} {unit}, at or past the run's end ({lengthKey} {runLength}" +
                $"{(lengthKey == "schedule.max_iters" && epochs is not null ? ", resolved from its epochs" : "")}): it would never step");
        if (entry.Begin >= end)
            throw new VimException($"{entry.BeginSource}: {entry.Name} begins at {entry.Begin} {unit}, not before its end {end}" +
                (entry.End is null ? $" (the run's end, {lengthKey})" : "") + ": begin must be below end (MMEngine steps it in [begin, end))");
        // Converted to iterations, its steps are known once the epoch is (ChainedParamSchedule.Resolve checks them again).
        if (entry.Type == ParamSchedulerType.OneCycleLR && !entry.ConvertToIterBased)
            CheckOneCycle(entry, entry.TotalSteps ?? end - entry.Begin, Math.Min(end, runLength) - entry.Begin - 1, unit);
    }

    /// <summary>
    /// Refuses a OneCycleLR whose cycle of <paramref name="totalSteps"/> the run would step past (its last step
    /// <paramref name="lastStep"/>; MMEngine raises "Tried to step … times"), or whose phases would span no step (a division by zero in MMEngine's).
    /// </summary>
    public static void CheckOneCycle(ParamSchedulerEntry entry, int totalSteps, int lastStep, string unit)
    {
        string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);
        if (lastStep > totalSteps)
            throw new VimException($"{entry.Source}: {entry.Name} total_steps is {totalSteps} {unit}, but the run steps it {lastStep + 1} times " +
                "(MMEngine raises \"Tried to step … times\"): raise total_steps, or leave it out for end − begin");
        double rise = entry.PctStart * totalSteps - 1;
        double fall = entry.ThreePhase ? 2 * entry.PctStart * totalSteps - 2 : totalSteps - 1;
        if (!(rise > 0 && fall > rise && (!entry.ThreePhase || totalSteps - 1 > fall)))
            throw new VimException($"{entry.Source}: {entry.Name} pct_start {Text(entry.PctStart)} over total_steps {totalSteps} leaves a phase of no steps " +
                $"(the rise ends at step pct_start × total_steps − 1 = {Text(rise)}{(entry.ThreePhase ? $", the fall at {Text(fall)}" : "")}, the cycle at {totalSteps - 1}); " +
                "MMEngine would divide by zero there: choose pct_start so that every phase spans at least one step");
    }

    private static string StepKeys(ParamSchedulerType type) => type switch
    {
        ParamSchedulerType.MultiStepLR => ", milestones",
        ParamSchedulerType.StepLR => ", step_size",
        ParamSchedulerType.CosineAnnealingLR => ", T_max",
        ParamSchedulerType.CosineRestartLR => ", periods",
        ParamSchedulerType.OneCycleLR => ", total_steps",
        _ => "",
    };

    private static ParamSchedulerEntry ReadEntry(ConfigNode node, int index)
    {
        string at = $"{Key}[{index.ToString(CultureInfo.InvariantCulture)}]";
        if (node is not ConfigMap map)
            throw new VimException($"{node.Source}: {at} must be a mapping with a type, e.g. {{type: LinearLR, start_factor: 0.001, by_epoch: false, end: 500}}");
        if (!map.TryGet("type", out var typeNode))
            throw new VimException($"{map.Source}: {at} has no type; expected one of {string.Join(", ", Enum.GetNames<ParamSchedulerType>())}");
        var typeName = ConfigBinder.Bind<string>(typeNode, $"{at}.type");
        // By name alone: Enum.TryParse would also take "3" or "LinearLR, PolyLR".
        if (!Enum.GetNames<ParamSchedulerType>().Contains(typeName) || !Enum.TryParse<ParamSchedulerType>(typeName, out var type))
            throw new VimException($"{map.KeySource("type")}: {at}.type '{typeName}' is not a supported scheduler; expected one of " +
                $"{string.Join(", ", Enum.GetNames<ParamSchedulerType>())}" +
                (ClosestMatch.Find(typeName ?? "", Enum.GetNames<ParamSchedulerType>()) is { } hint ? $"; did you mean '{hint}'?" : ""));
        string name = $"{at} ({type})";
        var valid = CommonKeys.Concat(KeysOf(type)).ToArray();
        foreach (var key in map.Keys)
            if (type == ParamSchedulerType.OneCycleLR && key == "max_lr")
                throw new VimException($"{map.KeySource(key)}: {name} takes its peak lr as eta_max (MMEngine's name; max_lr is PyTorch's)");
            else if (!valid.Contains(key))
                throw new VimException($"{map.KeySource(key)}: unknown key '{key}' in {name}; " +
                    (ClosestMatch.Find(key, valid) is { } hint ? $"did you mean '{hint}'? " : "") + $"(valid keys for {type}: {string.Join(", ", valid)})");

        T Value<T>(string key, T fallback) => map.TryGet(key, out var value) ? ConfigBinder.Bind<T>(value, $"{at}.{key}") : fallback;
        T? Optional<T>(string key) where T : struct => map.TryGet(key, out var value) && value is not ConfigScalar { IsNull: true }
            ? ConfigBinder.Bind<T>(value, $"{at}.{key}") : null;
        ConfigSource SourceOf(string key) => map.TryGet(key, out _) ? map.KeySource(key) : map.Source;
        VimException Refuse(string key, string expected, object? got) => new($"{SourceOf(key)}: {name} {key} must be {expected}, got {Text(got)}");
        // A key of two named values: false for the default (MMEngine's), true for the other.
        bool Either(string key, string fallback, string other) => Value(key, fallback) is var written && written == other ? true
            : written == fallback ? false : throw new VimException($"{SourceOf(key)}: {name} {key} must be {fallback} or {other}, got {Text(written)}");
        bool Written(string key) => map.TryGet(key, out var value) && value is not ConfigScalar { IsNull: true };

        var entry = new ParamSchedulerEntry
        {
            Index = index,
            Type = type,
            Source = map.Source,
            BeginSource = SourceOf("begin"),
            ByEpochSource = SourceOf("by_epoch"),
            Begin = Value("begin", 0),
            End = Optional<int>("end"),
            ByEpoch = Value("by_epoch", true),
            ConvertToIterBased = Value("convert_to_iter_based", false),
            StartFactor = Value("start_factor", 1.0 / 3),
            EndFactor = Value("end_factor", 1.0),
            Factor = Value("factor", ParamSchedulerEntry.RuleOf(type) == ParamSchedulerType.ReduceOnPlateauLR ? 0.1 : 1.0 / 3),
            Monitor = Value("monitor", "loss"),
            MonitorSource = SourceOf("monitor"),
            GreaterIsBetter = Either("rule", "less", "greater"),
            Patience = Value("patience", 10),
            Threshold = Value("threshold", 1e-4),
            AbsoluteThreshold = Either("threshold_rule", "rel", "abs"),
            Cooldown = Value("cooldown", 0),
            MinValue = Value("min_value", 0.0),
            Eps = Value("eps", 1e-8),
            StepSize = Value("step_size", 0),
            Milestones = Value<List<int>>("milestones", []),
            Gamma = Value("gamma", 0.1),
            TMax = Optional<int>("T_max"),
            EtaMin = Optional<double>("eta_min"),
            EtaMinRatio = Optional<double>("eta_min_ratio"),
            Power = Value("power", 1.0),
            Periods = Value<List<int>>("periods", []),
            RestartWeights = Value<List<double>>("restart_weights", [1.0]),
            EtaMax = Optional<double>("eta_max"),
            TotalSteps = Optional<int>("total_steps"),
            PctStart = Value("pct_start", 0.3),
            AnnealLinearly = Either("anneal_strategy", "cos", "linear"),
            DivFactor = Value("div_factor", 25.0),
            FinalDivFactor = Value("final_div_factor", 1e4),
            ThreePhase = Value("three_phase", false),
            CycleMomentum = Value("cycle_momentum", false),
            BaseMomentum = Value("base_momentum", 0.85),
            MaxMomentum = Value("max_momentum", 0.95),
        };

        if (entry.Begin < 0) throw Refuse("begin", "at least 0 (the step it starts at)", entry.Begin);
        if (entry.End is { } end && end <= entry.Begin)
            throw Refuse("end", $"above begin ({entry.Begin}): MMEngine steps it in [begin, end)", end);
        if (entry.ConvertToIterBased && !entry.ByEpoch)
            throw Refuse("convert_to_iter_based", "false while by_epoch is false (it converts an epoch-counted scheduler to iterations; MMEngine asserts so)", true);
        switch (entry.Rule)
        {
            case ParamSchedulerType.ReduceOnPlateauLR:
                if (!entry.ByEpoch) throw Refuse("by_epoch", $"true (MMEngine's {entry.Type} steps at evaluations only: it asserts by_epoch)", false);
                if (entry.ConvertToIterBased) throw Refuse("convert_to_iter_based", "false (it steps at evaluations, never per iteration)", true);
                if (!(entry.Factor > 0 && entry.Factor < 1))
                    throw Refuse("factor", $"in (0, 1) (the {entry.ParameterName} is multiplied by it at a plateau)", entry.Factor);
                if (entry.Patience < 0) throw Refuse("patience", "at least 0 (the evaluations without improvement tolerated)", entry.Patience);
                if (!(double.IsFinite(entry.Threshold) && entry.Threshold >= 0)) throw Refuse("threshold", "at least 0", entry.Threshold);
                if (entry.Cooldown < 0) throw Refuse("cooldown", "at least 0", entry.Cooldown);
                if (!(double.IsFinite(entry.MinValue) && entry.MinValue >= 0))
                    throw Refuse("min_value", $"at least 0 (the {entry.ParameterName} floor)", entry.MinValue);
                if (!(double.IsFinite(entry.Eps) && entry.Eps >= 0)) throw Refuse("eps", "at least 0", entry.Eps);
                if (entry.Monitor.Length == 0) throw Refuse("monitor", "a metric name the evaluation returns", "''");
                break;
            case ParamSchedulerType.OneCycleLR:
                // MMEngine's default eta_max is 0, an lr of 0 throughout: no one means it.
                if (entry.EtaMax is not { } etaMax) throw Refuse("eta_max", "given (the peak lr of the cycle; MMEngine's default 0 would train at lr 0)", null);
                if (!(double.IsFinite(etaMax) && etaMax > 0)) throw Refuse("eta_max", "positive", etaMax);
                if (entry.TotalSteps is { } totalSteps && totalSteps < 1) throw Refuse("total_steps", "at least 1 (null: end − begin)", totalSteps);
                if (!(entry.PctStart >= 0 && entry.PctStart <= 1)) throw Refuse("pct_start", "in [0, 1] (the share of the cycle spent rising)", entry.PctStart);
                if (!(double.IsFinite(entry.DivFactor) && entry.DivFactor > 0)) throw Refuse("div_factor", "positive (the first lr is eta_max / div_factor)", entry.DivFactor);
                if (!(double.IsFinite(entry.FinalDivFactor) && entry.FinalDivFactor > 0))
                    throw Refuse("final_div_factor", "positive (the last lr is eta_max / div_factor / final_div_factor)", entry.FinalDivFactor);
                foreach (var (key, momentum) in new[] { ("base_momentum", entry.BaseMomentum), ("max_momentum", entry.MaxMomentum) })
                {
                    if (Written(key) && !entry.CycleMomentum)
                        throw Refuse(key, "left out while cycle_momentum is false (MMEngine's OneCycleLR schedules the lr alone; cycle_momentum: true cycles the momentum as PyTorch's OneCycleLR)", momentum);
                    if (!(momentum >= 0 && momentum < 1)) throw Refuse(key, "in [0, 1) (SGD's momentum or Adam's betas[0])", momentum);
                }
                break;
            case ParamSchedulerType.LinearLR:
                // A start factor of 0 makes MMEngine's recursion divide 0 by 0 at its second step.
                if (!(entry.StartFactor > 0 && entry.StartFactor <= 1)) throw Refuse("start_factor", "in (0, 1] (the first step's fraction of the lr)", entry.StartFactor);
                if (!(entry.EndFactor >= 0 && entry.EndFactor <= 1)) throw Refuse("end_factor", "in [0, 1]", entry.EndFactor);
                break;
            case ParamSchedulerType.ConstantLR:
                if (!(entry.Factor > 0 && entry.Factor <= 1)) throw Refuse("factor", "in (0, 1] (the lr is divided by it again at the end)", entry.Factor);
                break;
            case ParamSchedulerType.StepLR:
                if (!Written("step_size")) throw Refuse("step_size", "given (the steps between decays, MMEngine has no default)", null);
                if (entry.StepSize < 1) throw Refuse("step_size", "at least 1", entry.StepSize);
                break;
            case ParamSchedulerType.MultiStepLR:
                if (entry.Milestones.Count == 0) throw Refuse("milestones", "a non-empty list of steps counted from begin, e.g. [8, 11]", null);
                for (int i = 0; i < entry.Milestones.Count; i++)
                    if (entry.Milestones[i] < 0 || (i > 0 && entry.Milestones[i] <= entry.Milestones[i - 1]))
                        throw Refuse("milestones", "rising steps of at least 0, counted from begin", $"[{string.Join(", ", entry.Milestones)}]");
                break;
            case ParamSchedulerType.ExponentialLR:
                if (!Written("gamma")) throw Refuse("gamma", "given (the factor of each step, MMEngine has no default)", null);
                break;
            case ParamSchedulerType.CosineAnnealingLR:
                if (entry.TMax is { } tMax && tMax < 1) throw Refuse("T_max", "at least 1 (null: end − begin)", tMax);
                break;
            case ParamSchedulerType.CosineRestartLR:
                if (entry.Periods.Count == 0 || entry.Periods.Any(p => p < 1))
                    throw Refuse("periods", "a non-empty list of cycle lengths of at least 1", $"[{string.Join(", ", entry.Periods)}]");
                if (entry.RestartWeights.Count != entry.Periods.Count)
                    throw Refuse("restart_weights", $"one weight per period ({entry.Periods.Count}; MMEngine asserts so)", $"[{string.Join(", ", entry.RestartWeights.Select(w => Text(w)))}]");
                if (entry.RestartWeights.Any(w => !(double.IsFinite(w) && w >= 0)))
                    throw Refuse("restart_weights", "finite weights of at least 0", $"[{string.Join(", ", entry.RestartWeights.Select(w => Text(w)))}]");
                if (entry.EtaMin is null && entry.EtaMinRatio is null)
                    throw Refuse("eta_min", "given, or eta_min_ratio (CosineRestartLR has no default floor in MMEngine)", null);
                break;
        }
        if (entry.Rule is ParamSchedulerType.StepLR or ParamSchedulerType.MultiStepLR or ParamSchedulerType.ExponentialLR
            && !(double.IsFinite(entry.Gamma) && entry.Gamma > 0))
            throw Refuse("gamma", "positive (the factor the lr is multiplied by)", entry.Gamma);
        if (entry.EtaMin is not null && entry.EtaMinRatio is not null)
            throw Refuse("eta_min_ratio", "left out while eta_min is given (one floor: absolute, or a fraction of each group's initial lr)", entry.EtaMinRatio);
        if (entry.EtaMin is { } etaMin && !(double.IsFinite(etaMin) && etaMin >= 0)) throw Refuse("eta_min", "at least 0", etaMin);
        if (entry.EtaMinRatio is { } ratio && !(ratio >= 0 && ratio <= 1)) throw Refuse("eta_min_ratio", "in [0, 1]", ratio);
        if (!(double.IsFinite(entry.Power) && entry.Power > 0)) throw Refuse("power", "positive", entry.Power);
        return entry;
    }

    private static string Text(object? value) => value switch
    {
        null => "nothing",
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };
}
