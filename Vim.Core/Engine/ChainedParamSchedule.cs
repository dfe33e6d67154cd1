using System.Globalization;
using Vim.Core.Config;

namespace Vim.Core.Engine;

/// <summary>
/// A schedule.param_scheduler entry in the run's iterations: it steps every <see cref="StepEvery"/> iterations (1, or an
/// epoch's iterations for a by_epoch entry MMEngine steps at epoch ends) and acts at its steps in [<see cref="Begin"/>,
/// <see cref="End"/>); the other step counts are converted as MMEngine's build_iter_from_epoch converts them.
/// <see cref="InitialLr"/>: the initial lr an earlier OneCycleLR wrote into every group before this entry was built (MMEngine's
/// OneCycleLR overwrites each group's initial_lr with eta_max / div_factor, which the lr schedulers built after it start from).
/// </summary>
public sealed record SteppedScheduler(ParamSchedulerEntry Entry, int StepEvery, int Begin, int End, int TMax, int StepSize,
    IReadOnlyList<int> Milestones, IReadOnlyList<int> CumulativePeriods, int TotalSteps = 0, double? InitialLr = null)
{
    /// <summary>The first iteration it sets the lr of.</summary>
    public int BeginIteration => Begin * StepEvery;

    /// <summary>The iteration from which it no longer steps (its last setting holds on).</summary>
    public int EndIteration => End * StepEvery;

    /// <summary>
    /// The value of <paramref name="parameter"/> (named lr below, as the lr schedulers' rules are written; a momentum
    /// scheduler applies its lr twin's rule to the momentum) after this scheduler's step number <paramref name="lastStep"/>
    /// (0 at begin), from the value the schedulers before it left (<paramref name="lr"/>) and the group's initial value:
    /// MMEngine's chainable _get_value, operation for operation, so the doubles are Python's.
    /// </summary>
    public double Next(double lr, double initialLr, int lastStep, ScheduledParameter parameter = ScheduledParameter.Lr)
    {
        var e = Entry;
        switch (e.Rule)
        {
            case ParamSchedulerType.OneCycleLR:
                return OneCycleValue(lastStep, parameter);
            case ParamSchedulerType.LinearLR:
            {
                if (lastStep == 0) return lr * e.StartFactor;
                int totalIters = End - Begin - 1;
                return lr * (1.0 + (e.EndFactor - e.StartFactor) / (totalIters * e.StartFactor + (lastStep - 1) * (e.EndFactor - e.StartFactor)));
            }
            case ParamSchedulerType.ConstantLR:
            {
                if (lastStep == 0) return lr * e.Factor;
                return lastStep == End - Begin - 1 ? lr * (1.0 / e.Factor) : lr;
            }
            case ParamSchedulerType.StepLR:
                return lastStep == 0 || lastStep % StepSize != 0 ? lr : lr * e.Gamma;
            case ParamSchedulerType.MultiStepLR:
            {
                int count = 0;
                foreach (int milestone in Milestones) if (milestone == lastStep) count++;
                return count == 0 ? lr : lr * Math.Pow(e.Gamma, count);
            }
            case ParamSchedulerType.ExponentialLR:
                return lastStep == 0 ? lr : lr * e.Gamma;
            case ParamSchedulerType.CosineAnnealingLR:
            {
                double etaMin = e.EtaMinFor(initialLr);
                if (lastStep == 0) return lr;
                // Python's % is never negative: the step after each half period (T_max + 1, 3·T_max + 1, …).
                if (((lastStep - 1 - TMax) % (2 * TMax) + 2 * TMax) % (2 * TMax) == 0)
                    return lr + (initialLr - etaMin) * (1 - Math.Cos(Math.PI / TMax)) / 2;
                return (1 + Math.Cos(Math.PI * lastStep / TMax)) / (1 + Math.Cos(Math.PI * (lastStep - 1) / TMax)) * (lr - etaMin) + etaMin;
            }
            case ParamSchedulerType.PolyLR:
            {
                if (lastStep == 0) return lr;
                double etaMin = e.EtaMin ?? 0.0;
                int totalIters = End - Begin - 1;
                return (lr - etaMin) * Math.Pow(1 - 1.0 / (totalIters - lastStep + 1), e.Power) + etaMin;
            }
            case ParamSchedulerType.QuadraticWarmupLR:
            {
                long totalIters = End - Begin;
                double increment = initialLr * (2 * lastStep + 1) / (totalIters * totalIters);
                return lastStep == 0 ? increment : lr + increment;
            }
            case ParamSchedulerType.CosineRestartLR:
            {
                int cycle = 0;
                while (cycle < CumulativePeriods.Count && lastStep >= CumulativePeriods[cycle]) cycle++;
                if (cycle == CumulativePeriods.Count) return lr;
                int restart = cycle == 0 ? 0 : CumulativePeriods[cycle - 1];
                int period = CumulativePeriods[cycle] - restart;
                int step = lastStep - restart;
                double etaMin = e.EtaMinFor(initialLr);
                if (step == 0) return initialLr * e.RestartWeights[cycle];
                return (1 + Math.Cos(Math.PI * step / period)) / (1 + Math.Cos(Math.PI * (step - 1) / period)) * (lr - etaMin) + etaMin;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(lr), e.Type, "unknown scheduler type");
        }
    }

    /// <summary>
    /// OneCycleLR's closed form at its step <paramref name="step"/> (it ignores the chain: MMEngine's _get_value reads only
    /// the phase bounds): the lr rises from eta_max / div_factor to eta_max until step pct_start·T − 1, then falls to
    /// eta_max / div_factor / final_div_factor at T − 1 (three_phase: back to the start by 2·pct_start·T − 2, then to the
    /// floor); with cycle_momentum the momentum runs the other way between max_momentum and base_momentum (PyTorch's).
    /// </summary>
    private double OneCycleValue(int step, ScheduledParameter parameter)
    {
        var e = Entry;
        double initial = e.EtaMax!.Value / e.DivFactor, peak = e.EtaMax.Value, floor = initial / e.FinalDivFactor;
        double high = e.MaxMomentum, low = e.BaseMomentum;
        bool lr = parameter == ScheduledParameter.Lr;
        var phases = new List<(double EndStep, double Start, double End)>
        {
            (e.PctStart * TotalSteps - 1, lr ? initial : high, lr ? peak : low),
        };
        if (e.ThreePhase)
        {
            phases.Add((2 * e.PctStart * TotalSteps - 2, lr ? peak : low, lr ? initial : high));
            phases.Add((TotalSteps - 1, lr ? initial : high, lr ? floor : high));
        }
        else phases.Add((TotalSteps - 1, lr ? peak : low, lr ? floor : high));
        double startStep = 0;
        for (int i = 0; ; i++)
        {
            var (endStep, start, end) = phases[i];
            if (step <= endStep || i == phases.Count - 1)
            {
                double pct = (step - startStep) / (endStep - startStep);
                return e.AnnealLinearly ? (end - start) * pct + start : end + (start - end) / 2.0 * (Math.Cos(Math.PI * pct) + 1);
            }
            startStep = endStep;
        }
    }

    /// <summary>"LinearLR iterations [0, 500)", or for an epoch-stepped one "MultiStepLR iterations [0, 1200), stepping every 100 (epoch ends), milestones at iterations [800, 1100]".</summary>
    public string Describe()
    {
        if (Entry.IsPlateau)
            return string.Create(CultureInfo.InvariantCulture, $"{Entry.Type} at evaluations{(StepEvery > 1 ? $" of epochs [{Begin}, {End})" : "")}, " +
                $"×{Entry.Factor:G6} after {Entry.Patience} without improvement of {Entry.Monitor} ({(Entry.GreaterIsBetter ? "greater" : "less")} is better)");
        string Join(IEnumerable<int> steps) => string.Join(", ", steps.Select(s => (s * StepEvery + BeginIteration).ToString(CultureInfo.InvariantCulture)));
        var text = $"{Entry.Type} iterations [{BeginIteration}, {EndIteration})";
        if (StepEvery > 1) text += $", stepping every {StepEvery} (epoch ends)";
        text += Entry.Rule switch
        {
            ParamSchedulerType.MultiStepLR => $", milestones at iterations [{Join(Milestones)}]",
            ParamSchedulerType.StepLR => $", ×{Entry.Gamma.ToString("G6", CultureInfo.InvariantCulture)} every {StepSize * StepEvery} iterations",
            ParamSchedulerType.CosineAnnealingLR => $", T_max {TMax * StepEvery} iterations",
            ParamSchedulerType.CosineRestartLR => $", restarts at iterations [{Join(CumulativePeriods.SkipLast(1))}]",
            ParamSchedulerType.OneCycleLR => $", total_steps {TotalSteps * StepEvery} iterations",
            _ => "",
        };
        return text;
    }
}

/// <summary>
/// MMEngine's chained param schedulers over one run: each entry resolved to iterations (<see cref="Resolve"/>), and the value
/// of a parameter group's lr or momentum at an iteration found by replaying MMEngine's recursion from iteration 0: at 0 every
/// entry takes its first step in list order (the schedulers' construction); after each iteration the iteration-stepped ones
/// step in list order (ParamSchedulerHook.after_train_iter), then at an epoch end the epoch-stepped ones (after_train_epoch).
/// Each entry's step changes the value the ones before it left, only at its steps in [begin, end), and only for the
/// parameter it schedules: the lr schedulers and the momentum ones form two independent chains in one list, as in MMEngine,
/// where each touches its own param_name. The whole state after an iteration is the value itself, so a cursor per
/// (parameter, initial value) makes the trainer's in-order queries one step each, and any other query replays from 0: the
/// same doubles whether the run was resumed or not.
/// </summary>
public sealed class ChainedParamSchedule
{
    private readonly Dictionary<(ScheduledParameter, double), (int Iteration, double Value)> _cursors = [];
    private readonly Lock _lock = new();

    public ChainedParamSchedule(IReadOnlyList<ParamSchedulerEntry> entries, int maxIters, int? iterationsPerEpoch)
    {
        Schedulers = Resolve(entries, maxIters, iterationsPerEpoch);
        MaxIters = maxIters;
        Plateaus = Schedulers.Where(s => s.Entry.IsPlateau).Select(s => new ReduceOnPlateau(s.Entry, iterationsPerEpoch is null ? int.MaxValue : s.End)).ToList();
    }

    /// <summary>The ReduceOnPlateauLR entries, in list order: their reductions depend on the evaluations, so the lr is a function of the iteration only given them.</summary>
    public IReadOnlyList<ReduceOnPlateau> Plateaus { get; }

    /// <summary>
    /// Feeds an evaluation's metrics to every ReduceOnPlateauLR (after <paramref name="done"/> iterations,
    /// <paramref name="epochsDone"/> finished epochs); returns those that reduce the lr from iteration <paramref name="done"/> on.
    /// </summary>
    public IReadOnlyList<ReduceOnPlateau> ObserveEvaluation(int done, int epochsDone, IReadOnlyDictionary<string, double> metrics)
    {
        lock (_lock)
        {
            var reduced = Plateaus.Where(p => p.Observe(done, epochsDone, metrics)).ToList();
            // A value already replayed past the reduction would miss it.
            if (reduced.Count > 0)
                foreach (var key in _cursors.Where(c => c.Value.Iteration >= done).Select(c => c.Key).ToList()) _cursors.Remove(key);
            return reduced;
        }
    }

    /// <summary>Each ReduceOnPlateauLR's state by its entry's index, for a training checkpoint.</summary>
    public IReadOnlyDictionary<int, PlateauState> PlateauStates => Plateaus.ToDictionary(p => p.Entry.Index, p => p.State);

    /// <summary>Restores a checkpoint's <see cref="PlateauStates"/>; an entry the checkpoint has no state for starts fresh.</summary>
    public void RestorePlateaus(IReadOnlyDictionary<int, PlateauState>? states)
    {
        lock (_lock)
        {
            foreach (var plateau in Plateaus)
                if (states?.TryGetValue(plateau.Entry.Index, out var state) == true) plateau.Restore(state);
            _cursors.Clear();
        }
    }

    public IReadOnlyList<SteppedScheduler> Schedulers { get; }

    public int MaxIters { get; }

    /// <summary>Whether any entry schedules the momentum (a momentum scheduler, or OneCycleLR with cycle_momentum).</summary>
    public bool SchedulesMomentum => Schedulers.Any(s => s.Entry.Sets(ScheduledParameter.Momentum));

    /// <summary>
    /// The entries in iterations. By_epoch entries need <paramref name="iterationsPerEpoch"/>; with convert_to_iter_based their
    /// begin, end, T_max, milestones, step_size, periods and total_steps are multiplied by it (MMEngine's build_iter_from_epoch),
    /// without it they step every epoch. A left-out end is the run's end (max_epochs or max_iters, as MMEngine's runner sets
    /// it); an end past it is kept, the entry cut short by the run. A OneCycleLR whose cycle the run would step past
    /// (MMEngine raises "Tried to step … times") or whose phases would span no step is refused.
    /// </summary>
    public static IReadOnlyList<SteppedScheduler> Resolve(IReadOnlyList<ParamSchedulerEntry> entries, int maxIters, int? iterationsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(entries);
        int? maxEpochs = iterationsPerEpoch is { } n ? maxIters / n : null;
        var resolved = new List<SteppedScheduler>(entries.Count);
        double? oneCycleInitialLr = null;
        foreach (var entry in entries)
        {
            ParamSchedulerList.CheckAgainstRun(entry, maxEpochs, maxIters);
            if (entry.IsPlateau)
            {
                // Stepped by evaluations, not here: begin and end in finished epochs, the whole run in an iteration-counted one.
                resolved.Add(iterationsPerEpoch is { } perEpoch
                    ? new SteppedScheduler(entry, perEpoch, entry.Begin, entry.End ?? maxEpochs!.Value, 0, 0, [], [])
                    : new SteppedScheduler(entry, 1, 0, maxIters, 0, 0, [], []));
                continue;
            }
            int end = entry.End ?? (entry.ByEpoch ? maxEpochs!.Value : maxIters);
            int scale = entry.ByEpoch && entry.ConvertToIterBased ? iterationsPerEpoch!.Value : 1;
            int stepEvery = entry.ByEpoch && !entry.ConvertToIterBased ? iterationsPerEpoch!.Value : 1;
            int Scaled(int steps) => checked(steps * scale);
            int begin = Scaled(entry.Begin);
            end = Scaled(end);
            int tMax = entry.TMax is { } written ? Scaled(written) : end - begin;
            var periods = entry.Periods.Select(Scaled).ToList();
            var cumulative = new List<int>(periods.Count);
            foreach (int period in periods) cumulative.Add((cumulative.Count == 0 ? 0 : cumulative[^1]) + period);
            int totalSteps = entry.TotalSteps is { } steps ? Scaled(steps) : end - begin;
            if (entry.Type == ParamSchedulerType.OneCycleLR) ParamSchedulerList.CheckOneCycle(entry, totalSteps, Math.Min(end, maxIters / stepEvery) - begin - 1, stepEvery > 1 ? "epochs" : "iterations");
            resolved.Add(new SteppedScheduler(entry, stepEvery, begin, end, tMax, Scaled(entry.StepSize), entry.Milestones.Select(Scaled).ToList(), cumulative,
                totalSteps, entry.Sets(ScheduledParameter.Lr) ? oneCycleInitialLr : null));
            if (entry.Type == ParamSchedulerType.OneCycleLR) oneCycleInitialLr = entry.EtaMax!.Value / entry.DivFactor;
        }
        return resolved;
    }

    /// <summary>Every entry in iterations, in list order, for the console and `vim config show --resolved`: "schedule.param_scheduler in iterations: LinearLR iterations [0, 500); …".</summary>
    public string Describe() => $"{ParamSchedulerList.Key} in iterations: {string.Join("; ", Schedulers.Select(s => s.Describe() +
        (s.EndIteration > MaxIters ? $" (cut short by the run's end at {MaxIters}, as MMEngine's)" : "")))}";

    /// <summary>The lr of a group whose initial lr (MMEngine's initial_lr: base lr × its multipliers) is <paramref name="initialLr"/>, during <paramref name="iteration"/>.</summary>
    public double LrAt(double initialLr, int iteration) => ValueAt(ScheduledParameter.Lr, initialLr, iteration);

    /// <summary>
    /// The momentum (SGD's momentum or Adam's betas[0]) during <paramref name="iteration"/>, from the optimiser's
    /// <paramref name="initialMomentum"/>; it stays there where no entry schedules the momentum.
    /// </summary>
    public double MomentumAt(double initialMomentum, int iteration) => ValueAt(ScheduledParameter.Momentum, initialMomentum, iteration);

    private double ValueAt(ScheduledParameter parameter, double initial, int iteration)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(iteration);
        lock (_lock)
        {
            var (at, value) = _cursors.TryGetValue((parameter, initial), out var cursor) && cursor.Iteration <= iteration ? cursor : (-1, initial);
            while (at < iteration) value = Advance(parameter, value, initial, ++at);
            _cursors[(parameter, initial)] = (at, value);
            return value;
        }
    }

    /// <summary>The value for <paramref name="iteration"/> from the one of the iteration before it: the steps MMEngine takes between them.</summary>
    private double Advance(ScheduledParameter parameter, double value, double initial, int iteration)
    {
        foreach (var scheduler in Schedulers)
            if (iteration == 0 || scheduler.StepEvery == 1)
                value = Step(scheduler, parameter, value, initial, iteration);
        if (iteration == 0) return value;
        foreach (var scheduler in Schedulers)
            if (scheduler.StepEvery > 1 && iteration % scheduler.StepEvery == 0)
                value = Step(scheduler, parameter, value, initial, iteration / scheduler.StepEvery);
        // Last, as MMEngine's after_val_epoch follows after_train_iter and after_train_epoch.
        foreach (var plateau in Plateaus)
            if (plateau.Entry.Sets(parameter) && plateau.ReducedFrom.Contains(iteration)) value = plateau.Reduce(value);
        return value;
    }

    private static double Step(SteppedScheduler scheduler, ScheduledParameter parameter, double value, double initial, int step) =>
        !scheduler.Entry.IsPlateau && scheduler.Entry.Sets(parameter) && step >= scheduler.Begin && step < scheduler.End
            ? scheduler.Next(value, scheduler.InitialLr ?? initial, step - scheduler.Begin, parameter)
            : value;
}
