using System.Globalization;
using Vim.Core.Config;

namespace Vim.Core.Engine;

/// <summary>
/// MMEngine's EarlyStoppingHook (train.early_stopping), fed each evaluation's metrics by the trainer. In order: a monitored
/// value that is NaN or infinite stops the run at once (check_finite; without it the evaluation is ignored); the value
/// improves when it beats the best so far by more than min_delta (greater: value &gt; best + min_delta; less: value &lt;
/// best − min_delta), which makes it the best and resets the count of evaluations without improvement, else the count
/// grows; a value better than stopping_threshold stops the run at once; a count reaching patience stops it.
/// Departures from MMEngine: an improvement must be strictly more than min_delta (MMEngine counts a value exactly
/// min_delta better, with min_delta 0 an equal one, as an improvement, so a metric stuck at one value, such as the AP of a
/// detector that has not started to learn, never stopped it); min_delta defaults to 0 rather than 0.1, a size that
/// depends on the metric's units; rule defaults to greater (every metric our evaluators return is) rather than being
/// inferred from the name; a monitor the evaluator does not return is refused (MMEngine warns and skips by default); with
/// check_finite off a non-finite value is ignored (MMEngine would make NaN the best, after which every value improves);
/// and the best value and the count travel in the training checkpoint (<see cref="EarlyStoppingState"/>), so a resumed
/// run stops where the uninterrupted one does.
/// </summary>
public sealed class EarlyStopping
{
    private readonly EarlyStoppingConfig _settings;
    private double? _best;
    private int _withoutImprovement;

    private EarlyStopping(EarlyStoppingConfig settings, string monitor, double? best, int withoutImprovement)
    {
        _settings = settings;
        Monitor = monitor;
        _best = best;
        _withoutImprovement = withoutImprovement;
    }

    /// <summary>The metric watched: train.early_stopping.monitor, or the task's primary metric.</summary>
    public string Monitor { get; }

    /// <summary>What a checkpoint must keep for a resumed run to decide as the uninterrupted one.</summary>
    public EarlyStoppingState State => new(Monitor, _settings.Rule, _best, _withoutImprovement);

    /// <summary>
    /// The watcher of a run: fresh, or continuing <paramref name="restored"/> (a resumed checkpoint's). A checkpoint that
    /// watched another metric or rule, or none (written before early stopping was on, or before it existed), starts the
    /// count afresh; the first case is noted on <paramref name="console"/>.
    /// </summary>
    public static EarlyStopping Start(EarlyStoppingConfig settings, string primaryMetric, EarlyStoppingState? restored, TextWriter console)
    {
        var monitor = settings.Monitor ?? primaryMetric;
        if (restored is null || (restored.Monitor == monitor && restored.Rule == settings.Rule))
            return new EarlyStopping(settings, monitor, restored?.Best, restored?.EvaluationsWithoutImprovement ?? 0);
        console.WriteLine($"note: the checkpoint's early stopping watched {restored.Monitor} ({RuleName(restored.Rule)}); this run watches {monitor} " +
            $"({RuleName(settings.Rule)}), so its count of evaluations without improvement starts at 0");
        return new EarlyStopping(settings, monitor, null, 0);
    }

    /// <summary>
    /// Takes one evaluation's metrics (the same on every rank) and returns why training must stop now, or null to go on.
    /// A monitor the metrics lack is refused, naming the key and the metrics there are.
    /// </summary>
    public EarlyStop? Observe(int iteration, IReadOnlyDictionary<string, double> metrics)
    {
        if (!metrics.TryGetValue(Monitor, out var value))
            throw new VimException($"train.early_stopping.monitor: the evaluation at iteration {iteration} returned no '{Monitor}'; it returned " +
                $"{string.Join(", ", metrics.Keys)}. Set train.early_stopping.monitor to one of them (null watches the task's primary metric)");
        if (!double.IsFinite(value))
            return _settings.CheckFinite ? Stop(iteration, EarlyStopReason.NotFinite, value) : null;

        bool greater = _settings.Rule == EarlyStoppingRule.Greater;
        bool improved = _best is not { } best || (greater ? value > best + _settings.MinDelta : value < best - _settings.MinDelta);
        if (improved)
        {
            _best = value;
            _withoutImprovement = 0;
        }
        else
        {
            _withoutImprovement++;
        }
        if (_settings.StoppingThreshold is { } threshold && (greater ? value > threshold : value < threshold))
            return Stop(iteration, EarlyStopReason.StoppingThreshold, value);
        return _withoutImprovement >= _settings.Patience ? Stop(iteration, EarlyStopReason.NoImprovement, value) : null;
    }

    /// <summary>
    /// The stop of a rank whose own evaluation did not ask for it while another's did: the ranks' metrics should be equal,
    /// but no rank may train on alone, its collectives unanswered.
    /// </summary>
    public EarlyStop StopWithTheOtherRanks(int iteration, IReadOnlyDictionary<string, double> metrics) =>
        Stop(iteration, EarlyStopReason.AnotherRank, metrics.GetValueOrDefault(Monitor, double.NaN));

    private EarlyStop Stop(int iteration, EarlyStopReason reason, double value) =>
        new(iteration, reason, Monitor, _settings.Rule, value, _best, _withoutImprovement, _settings.Patience, _settings.MinDelta, _settings.StoppingThreshold);

    public static string RuleName(EarlyStoppingRule rule) => ConfigBinder.SnakeCase(rule.ToString());

    /// <summary>The rule a name (<see cref="RuleName"/>) stands for, or null for no rule's name.</summary>
    public static EarlyStoppingRule? ParseRule(string name) =>
        Enum.GetValues<EarlyStoppingRule>().Cast<EarlyStoppingRule?>().FirstOrDefault(rule => RuleName(rule!.Value) == name);
}

/// <summary>The early-stopping progress a training checkpoint carries.</summary>
/// <param name="Best">The best value of <paramref name="Monitor"/> so far by the rule; null before its first finite value.</param>
/// <param name="EvaluationsWithoutImprovement">Evaluations since the last improvement.</param>
public sealed record EarlyStoppingState(string Monitor, EarlyStoppingRule Rule, double? Best, int EvaluationsWithoutImprovement);

public enum EarlyStopReason
{
    /// <summary>patience evaluations in a row without improvement.</summary>
    NoImprovement,

    /// <summary>The value was better than stopping_threshold.</summary>
    StoppingThreshold,

    /// <summary>The value was NaN or infinite (check_finite).</summary>
    NotFinite,

    /// <summary>Another rank's evaluation stopped the run.</summary>
    AnotherRank,
}

/// <summary>Why and where a run stopped early: the log record, the console line and <see cref="TrainingResult.EarlyStop"/>.</summary>
public sealed record EarlyStop(int Iteration, EarlyStopReason Reason, string Monitor, EarlyStoppingRule Rule, double Value, double? Best,
    int EvaluationsWithoutImprovement, int Patience, double MinDelta, double? StoppingThreshold)
{
    /// <summary>The reason in a sentence.</summary>
    public string Message => Reason switch
    {
        EarlyStopReason.NoImprovement =>
            $"{Monitor} has not improved on its best {Number(Best)} by more than min_delta {Number(MinDelta)} for {EvaluationsWithoutImprovement} " +
            $"evaluation{(EvaluationsWithoutImprovement == 1 ? "" : "s")} (patience {Patience}); the last was {Number(Value)}",
        EarlyStopReason.StoppingThreshold =>
            $"{Monitor} {Number(Value)} is {(Rule == EarlyStoppingRule.Greater ? "above" : "below")} stopping_threshold {Number(StoppingThreshold)}",
        EarlyStopReason.NotFinite =>
            $"{Monitor} is {Number(Value)} (check_finite); its best was {Number(Best)}",
        _ => $"another rank's evaluation stopped the run ({Monitor} here {Number(Value)}, best {Number(Best)})",
    };

    /// <summary>The log.jsonl record (mode "early_stop"), naming the checkpoint written at the stop.</summary>
    public Dictionary<string, object?> LogRecord(string checkpoint) => new()
    {
        ["iter"] = Iteration,
        ["mode"] = TrainingLogModes.EarlyStop,
        ["reason"] = ConfigBinder.SnakeCase(Reason.ToString()),
        ["monitor"] = Monitor,
        ["value"] = Value,
        ["best"] = Best ?? double.NaN,
        ["evaluations_without_improvement"] = EvaluationsWithoutImprovement,
        ["patience"] = Patience,
        ["message"] = Message,
        ["checkpoint"] = checkpoint,
    };

    private static string Number(double? value) => value switch
    {
        null => "none",
        double v when double.IsNaN(v) => "NaN",
        double v => v.ToString("G6", CultureInfo.InvariantCulture),
    };
}
