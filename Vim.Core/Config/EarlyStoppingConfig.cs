namespace Vim.Core.Config;

/// <summary>
/// train.early_stopping (MMEngine's EarlyStoppingHook): stop training once the monitored validation metric has not
/// improved for <see cref="Patience"/> evaluations in a row. The section absent or null leaves it off. See
/// <see cref="Engine.EarlyStopping"/> for the rules and where they depart from MMEngine's.
/// </summary>
public sealed class EarlyStoppingConfig
{
    /// <summary>The metric watched: any key the task's evaluator returns; null watches the task's primary metric (mIoU, bbox_mAP).</summary>
    public string? Monitor { get; set; }

    /// <summary>Whether a greater or a smaller value of the monitored metric is better.</summary>
    public EarlyStoppingRule Rule { get; set; } = EarlyStoppingRule.Greater;

    /// <summary>An evaluation improves only by beating the best value so far by more than this (in the metric's own units).</summary>
    public double MinDelta { get; set; }

    /// <summary>Evaluations in a row without improvement after which training stops.</summary>
    public int Patience { get; set; } = 5;

    /// <summary>Stop at once when an evaluation is better than this value (null: no threshold).</summary>
    public double? StoppingThreshold { get; set; }

    /// <summary>Stop at once when the monitored metric is NaN or infinite; false ignores such an evaluation.</summary>
    public bool CheckFinite { get; set; } = true;
}

/// <summary>MMEngine's comparison rules for a monitored metric.</summary>
public enum EarlyStoppingRule
{
    /// <summary>Greater is better (mIoU, bbox_mAP, accuracies).</summary>
    Greater,

    /// <summary>Smaller is better (a loss, an error).</summary>
    Less,
}
