namespace Vim.Data.Evaluation.Robustness;

/// <summary>One corruption's performance under corruption: mPC_c, the mean over its severities, and rPC_c = mPC_c / P.</summary>
public sealed record CorruptionPerformance(string Corruption, double MeanUnderCorruption, double Relative);

/// <summary>
/// The robustness benchmark's numbers for one metric (Michaelis et al. 2019, mmdet's robustness_eval.py): P, the clean
/// performance; mPC, the mean performance under corruption over every corruption and every severity above 0; rPC =
/// mPC / P; and each corruption's own mPC and rPC. An undefined value (NaN, or pycocotools' −1 for "no ground truth")
/// leaves the means it enters undefined rather than pulled towards −1; rPC of a zero P is undefined.
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
            double mean = c.BySeverity.Count == 0 ? double.NaN : c.BySeverity.Select(Defined).Average();
            return new CorruptionPerformance(c.Corruption, mean, Ratio(mean, p));
        }).ToList();
        // The mean over every (corruption, severity) cell; with the same severities for every corruption it is also the
        // mean of the corruptions' means, as mmdet's np.mean(results[:, 1:], axis=(0, 1)).
        var cells = corrupted.SelectMany(c => c.BySeverity).Select(Defined).ToList();
        double overall = cells.Count == 0 ? double.NaN : cells.Average();
        return new RobustnessSummary(metric, p, overall, Ratio(overall, p), corruptions);
    }

    /// <summary>The mean under corruption without <paramref name="left"/> (e.g. our procedural frost), over the remaining cells.</summary>
    public static double MeanWithout(IReadOnlyList<(string Corruption, IReadOnlyList<double> BySeverity)> corrupted, string left)
    {
        var cells = corrupted.Where(c => c.Corruption != left).SelectMany(c => c.BySeverity).Select(Defined).ToList();
        return cells.Count == 0 ? double.NaN : cells.Average();
    }

    private static double Defined(double value) => value < 0 ? double.NaN : value;

    private static double Ratio(double value, double clean) => clean > 0 ? value / clean : double.NaN;
}
