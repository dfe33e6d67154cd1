using System.Globalization;

namespace Vim.Data.Evaluation.Robustness;

/// <summary>One corruption's performance under corruption: mPC_c, the mean over its severities, and rPC_c = mPC_c / P.</summary>
public sealed record CorruptionPerformance(string Corruption, double MeanUnderCorruption, double Relative);

/// <summary>
/// The robustness benchmark's numbers for one metric (Michaelis et al. 2019, mmdet's robustness_eval.py): P, the clean
/// performance; mPC, the mean performance under corruption over every corruption and every severity above 0; rPC =
/// mPC / P; and each corruption's own mPC and rPC. An undefined value (NaN, or pycocotools' −1 for "no ground truth")
/// leaves the means it enters undefined rather than pulled towards −1; rPC of a zero P is undefined. The rule lives here
/// (<see cref="Defined"/>, <see cref="Mean"/>, <see cref="Format"/>) for robustness.json, robustness.md and the progress lines alike.
/// </summary>
public sealed record RobustnessSummary(string Metric, double Clean, double MeanUnderCorruption, double Relative, IReadOnlyList<CorruptionPerformance> Corruptions)
{
    /// <param name="clean">P: the metric on the clean images.</param>
    /// <param name="corrupted">Per corruption, the metric at each of its severities above 0 (all corruptions the same severities, as the grid runs them).</param>
    public static RobustnessSummary Compute(string metric, double clean, IReadOnlyList<(string Corruption, IReadOnlyList<double> BySeverity)> corrupted)
    {
        double p = Defined(clean);
        var corruptions = corrupted.Select(c =>
        {
            double mean = Mean(c.BySeverity);
            return new CorruptionPerformance(c.Corruption, mean, Ratio(mean, p));
        }).ToList();
        // The mean over every (corruption, severity) cell; with the same severities for every corruption it is also the
        // mean of the corruptions' means, as mmdet's np.mean(results[:, 1:], axis=(0, 1)).
        double overall = Mean(corrupted.SelectMany(c => c.BySeverity));
        return new RobustnessSummary(metric, p, overall, Ratio(overall, p), corruptions);
    }

    /// <summary>The mean under corruption without <paramref name="left"/> (e.g. our procedural frost), over the remaining cells.</summary>
    public static double MeanWithout(IReadOnlyList<(string Corruption, IReadOnlyList<double> BySeverity)> corrupted, string left) =>
        Mean(corrupted.Where(c => c.Corruption != left).SelectMany(c => c.BySeverity));

    /// <summary>
    /// The value, or NaN where it is undefined: NaN already, or negative, which no metric of the grid is but pycocotools'
    /// −1 for "no ground truth in this range" (averaging it in would read as a score of −1).
    /// </summary>
    public static double Defined(double value) => value < 0 ? double.NaN : value;

    /// <summary>
    /// The mean of <paramref name="values"/>; NaN when there are none or when any is undefined (<see cref="Defined"/>):
    /// a cell without a score leaves its mean without one too, rather than a mean over fewer cells that would not compare
    /// with another grid's.
    /// </summary>
    public static double Mean(IEnumerable<double> values)
    {
        var defined = values.Select(Defined).ToList();
        return defined.Count == 0 ? double.NaN : defined.Average();
    }

    /// <summary>rPC: <paramref name="value"/> relative to the clean performance; undefined for a P that is not above 0.</summary>
    public static double Ratio(double value, double clean) => clean > 0 ? value / clean : double.NaN;

    /// <summary>
    /// A metric as the report and the progress lines print it: two decimals, or "n/a" where it is undefined, −1 included
    /// (printing pycocotools' −1 as "-1.00" would show a marker as a score).
    /// </summary>
    public static string Format(double value)
    {
        double defined = Defined(value);
        return double.IsFinite(defined) ? defined.ToString("0.00", CultureInfo.InvariantCulture) : "n/a";
    }
}
