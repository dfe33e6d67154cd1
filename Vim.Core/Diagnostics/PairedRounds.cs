using MathNet.Numerics.Statistics;

namespace Vim.Core.Diagnostics;

/// <summary>
/// Speed compared within rounds. A benchmark that alternates what it compares, round by round, pairs each one's time
/// with the baseline's time of the same round: a slow spell of a shared machine then stretches both sides of a ratio,
/// and the median over rounds drops the round it hit hardest.
/// </summary>
public static class PairedRounds
{
    /// <summary>
    /// The median over rounds of baseline time / candidate time (above 1: the candidate is faster), from the rounds in
    /// which both times are finite; NaN when there is none.
    /// </summary>
    public static double MedianRatio(IReadOnlyDictionary<int, double> baselineByRound, IReadOnlyDictionary<int, double> candidateByRound)
    {
        var ratios = candidateByRound
            .Where(c => double.IsFinite(c.Value) && baselineByRound.TryGetValue(c.Key, out var b) && double.IsFinite(b))
            .Select(c => baselineByRound[c.Key] / c.Value)
            .ToList();
        return ratios.Count == 0 ? double.NaN : ratios.Median();
    }
}
