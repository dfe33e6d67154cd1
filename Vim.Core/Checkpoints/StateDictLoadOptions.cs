namespace Vim.Core.Checkpoints;

/// <summary>How <see cref="StateDictLoader"/> matches checkpoint tensors to module parameters.</summary>
public sealed record StateDictLoadOptions
{
    /// <summary>
    /// Strict: any missing, unexpected or shape-mismatched key aborts the load before anything is copied.
    /// Non-strict: matching keys are copied, the rest only reported.
    /// </summary>
    public bool Strict { get; init; } = true;

    /// <summary>
    /// Keys (after <see cref="RenameKey"/>) for which this returns true are left out on both sides: not
    /// copied, not reported missing or unexpected (e.g. the classifier head when class counts differ).
    /// </summary>
    public Func<string, bool>? IgnoreKey { get; init; }

    /// <summary>Maps checkpoint names to module names (e.g. strips a "module." prefix).</summary>
    public Func<string, string>? RenameKey { get; init; }

    /// <summary>An <see cref="IgnoreKey"/> that leaves out every key starting with one of the prefixes.</summary>
    public static Func<string, bool> IgnorePrefixes(params string[] prefixes) =>
        key => prefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));
}
