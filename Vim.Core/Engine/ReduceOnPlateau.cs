using System.Globalization;
using Vim.Core.Config;

namespace Vim.Core.Engine;

/// <summary>
/// What a ReduceOnPlateauLR or ReduceOnPlateauMomentum entry has decided so far, all a resumed run needs to decide as the
/// uninterrupted one: the best monitored value, the evaluations without improvement, the cooldown left, and the iterations
/// from which it reduced the lr or momentum (the values themselves follow by replaying the chain with those reductions).
/// </summary>
public sealed record PlateauState(double Best, int BadEvaluations, int CooldownLeft, IReadOnlyList<int> ReducedFrom)
{
    /// <summary>"best;bad;cooldown;it,it,…", the best as round-trip text, for a checkpoint's metadata.</summary>
    public string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"{Best:R};{BadEvaluations};{CooldownLeft};{string.Join(",", ReducedFrom)}");

    /// <summary>Reads <see cref="ToText"/>; null when the text is not of that form.</summary>
    public static PlateauState? Parse(string text)
    {
        var parts = text.Split(';');
        if (parts.Length != 4
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var best)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var bad)
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var cooldown))
            return null;
        var reduced = new List<int>();
        foreach (var item in parts[3].Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var iteration)) return null;
            reduced.Add(iteration);
        }
        return new PlateauState(best, bad, cooldown, reduced);
    }
}

/// <summary>
/// MMEngine's ReduceOnPlateauParamScheduler for the lr (ReduceOnPlateauLR) or the momentum (ReduceOnPlateauMomentum: SGD's
/// momentum or Adam's betas[0], by the same rule; "lr" below reads as the momentum there), fed each evaluation's metrics (ParamSchedulerHook.after_val_epoch),
/// decision for decision: within [begin, end) in finished training epochs, a value better than the best by the threshold
/// (less/rel: value &lt; best·(1 − threshold); less/abs: value &lt; best − threshold; greater mirrored) becomes the best and
/// clears the count of bad evaluations, anything else (NaN too: every comparison with it is false) adds one; during a cooldown
/// the cooldown counts down and the count is cleared; a count above patience reduces every group's lr to
/// max(lr·factor, min_value), a group whose lr would fall by no more than eps keeping its own, and starts the cooldown.
/// The best starts at MMEngine's ±1e9 (its INF), not ±∞.
/// </summary>
/// <param name="endEpoch">The end of its [begin, end) in finished epochs: its end, or the run's max_epochs where it leaves end out
/// (MMEngine's runner sets a left-out end so), so the evaluation after the last epoch is outside; int.MaxValue in an
/// iteration-counted run, whose IterBasedTrainLoop never finishes an epoch.</param>
public sealed class ReduceOnPlateau(ParamSchedulerEntry entry, int endEpoch)
{
    private const double MmengineInf = 1e9;
    private readonly List<int> _reducedFrom = [];
    private double _best = entry.GreaterIsBetter ? -MmengineInf : MmengineInf;
    private int _bad, _cooldownLeft;

    public ParamSchedulerEntry Entry { get; } = entry;

    /// <summary>The iterations from which the lr is reduced (each the iteration after an evaluation that decided so), rising.</summary>
    public IReadOnlyList<int> ReducedFrom => _reducedFrom;

    public PlateauState State => new(_best, _bad, _cooldownLeft, _reducedFrom.ToList());

    public void Restore(PlateauState state)
    {
        (_best, _bad, _cooldownLeft) = (state.Best, state.BadEvaluations, state.CooldownLeft);
        _reducedFrom.Clear();
        _reducedFrom.AddRange(state.ReducedFrom);
    }

    /// <summary>
    /// Takes the evaluation after <paramref name="done"/> iterations, when <paramref name="epochsDone"/> training epochs have
    /// finished (0 in an iteration-counted run, as MMEngine's IterBasedTrainLoop never ends one); true when it reduces the lr
    /// from iteration <paramref name="done"/> on. A monitor the metrics lack is refused, naming those there are.
    /// </summary>
    public bool Observe(int done, int epochsDone, IReadOnlyDictionary<string, double> metrics)
    {
        if (epochsDone < Entry.Begin || epochsDone >= endEpoch) return false;
        if (!metrics.TryGetValue(Entry.Monitor, out var value))
            throw new VimException($"{Entry.MonitorSource ?? Entry.Source}: {Entry.Name} monitor '{Entry.Monitor}' is not among the metrics the evaluation " +
                $"after iteration {done} returned: {string.Join(", ", metrics.Keys)}");
        if (IsBetter(value))
        {
            _best = value;
            _bad = 0;
        }
        else _bad++;
        if (_cooldownLeft > 0)
        {
            _cooldownLeft--;
            _bad = 0;
        }
        if (_bad <= Entry.Patience) return false;
        _reducedFrom.Add(done);
        _cooldownLeft = Entry.Cooldown;
        _bad = 0;
        return true;
    }

    private bool IsBetter(double value) => (Entry.GreaterIsBetter, Entry.AbsoluteThreshold) switch
    {
        (false, false) => value < _best * (1 - Entry.Threshold),
        (false, true) => value < _best - Entry.Threshold,
        (true, false) => value > _best * (Entry.Threshold + 1),
        (true, true) => value > _best + Entry.Threshold,
    };

    /// <summary>A group's lr after a reduction: max(lr·factor, min_value), unless that lowers it by eps or less.</summary>
    public double Reduce(double lr)
    {
        double reduced = Math.Max(lr * Entry.Factor, Entry.MinValue);
        return lr - reduced > Entry.Eps ? reduced : lr;
    }
}
