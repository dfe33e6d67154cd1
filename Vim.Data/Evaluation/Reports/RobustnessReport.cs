using System.Globalization;
using System.Text;
using Vim.Core.IO;
using Vim.Data.Evaluation.Robustness;
using Vim.Data.Transforms.Corruptions;

namespace Vim.Data.Evaluation.Reports;

/// <summary>
/// robustness.md and its charts: per summary metric, P, mPC and rPC overall and per corruption with the metric at every
/// severity (mmdet's robustness_eval.py), a chart of the metric against severity with one line per corruption and, when
/// the grid spans several groups, one per group (the mean of its corruptions), and the sample drawings.
/// </summary>
public static class RobustnessReport
{
    public const string MarkdownFile = "robustness.md";

    /// <summary>The chart of <paramref name="metric"/> against severity, one line per corruption.</summary>
    public static string ChartName(string metric) => $"robustness_{metric}.png";

    /// <summary>The same with one line per corruption group.</summary>
    public static string GroupChartName(string metric) => $"robustness_{metric}_groups.png";

    public static void Write(RobustnessResults results, string dir)
    {
        var sb = new StringBuilder();
        var setup = results.Setup;
        var severities = results.Severities;
        sb.AppendLine($"# Robustness to image corruptions: {Path.GetFileName(setup.Checkpoint)}").AppendLine();
        sb.AppendLine($"{results.Task} config `{setup.Config}`{(setup.Overrides.Count > 0 ? $" with `{string.Join(" ", setup.Overrides.Select(o => "--set " + o))}`" : "")}, " +
            $"checkpoint `{setup.Checkpoint}`{(setup.Ema ? " (EMA weights)" : "")}: the validation split ({setup.Images} images) evaluated clean and under " +
            $"{results.Corruptions.Count} corruption(s) at severities {string.Join(", ", severities)}, each image corrupted after decoding and before the " +
            "test resize (mmdet's test_robustness.py), its random draws seeded by its index in the split. P is the clean performance, mPC the mean over " +
            "the corruptions and severities, rPC = mPC / P (Michaelis et al. 2019). Every metric of every cell: " +
            $"[{RobustnessBenchmark.ResultsFile}]({RobustnessBenchmark.ResultsFile}).").AppendLine();
        if (!results.Complete) sb.AppendLine("**The grid is not complete**: the numbers below cover the finished cells only.").AppendLine();
        bool withFrost = results.Corruptions.Contains(ImageCorruptions.ProceduralFrost);
        foreach (var summary in results.Summaries())
        {
            sb.AppendLine($"## {summary.Metric}").AppendLine();
            sb.AppendLine($"P {RobustnessSummary.Format(summary.Clean)} · mPC {RobustnessSummary.Format(summary.MeanUnderCorruption)} · rPC {Percent(summary.Relative)}").AppendLine();
            sb.Append("| corruption | group |");
            foreach (int s in severities) sb.Append($" severity {s} |");
            sb.AppendLine(" mPC | rPC |");
            sb.Append("|---|---|").Append(string.Concat(severities.Select(_ => "---|"))).AppendLine("---|---|");
            foreach (var corruption in summary.Corruptions)
            {
                string name = corruption.Corruption == ImageCorruptions.ProceduralFrost ? $"{corruption.Corruption} †" : corruption.Corruption;
                sb.Append($"| {name} | {ImageCorruptions.GroupOf(corruption.Corruption)} |");
                foreach (int s in severities)
                    sb.Append($" {(results.Has(corruption.Corruption, s) ? RobustnessSummary.Format(RobustnessResults.Value(results.Results[corruption.Corruption][s], summary.Metric)) : "…")} |");
                sb.AppendLine($" {RobustnessSummary.Format(corruption.MeanUnderCorruption)} | {Percent(corruption.Relative)} |");
            }
            sb.Append($"| **all** | |").Append(string.Concat(severities.Select(s => $" {RobustnessSummary.Format(SeverityMean(results, summary.Metric, s))} |")))
                .AppendLine($" **{RobustnessSummary.Format(summary.MeanUnderCorruption)}** | **{Percent(summary.Relative)}** |");
            sb.AppendLine();
            if (withFrost)
            {
                double withoutFrost = RobustnessSummary.MeanWithout(results.Cells(summary.Metric), ImageCorruptions.ProceduralFrost);
                sb.AppendLine($"† frost overlays our procedural frost texture, not the imagecorruptions package's photographs: its numbers, and the mPC " +
                    $"and rPC that include it, are not comparable with published COCO-C / ADE20K-C results. Without frost: mPC {RobustnessSummary.Format(withoutFrost)}, " +
                    $"rPC {Percent(RobustnessSummary.Ratio(withoutFrost, summary.Clean))}.").AppendLine();
            }
            WriteCharts(results, summary.Metric, dir);
            sb.AppendLine($"![{summary.Metric} against severity]({ChartName(summary.Metric)})").AppendLine();
            if (Groups(results).Count > 1) sb.AppendLine($"![{summary.Metric} against severity by group]({GroupChartName(summary.Metric)})").AppendLine();
        }
        if (results.Clean is null) sb.AppendLine("The clean pass has not run yet.").AppendLine();
        sb.AppendLine("## Samples").AppendLine();
        sb.AppendLine("The first image the grid evaluates with an object (detection) or the first image (segmentation), as each cell read it, with its prediction:").AppendLine();
        sb.AppendLine($"clean: ![clean]({RobustnessBenchmark.SamplesFolder}/{RobustnessBenchmark.SampleName(null, 0)})").AppendLine();
        foreach (var corruption in results.Corruptions)
        {
            sb.Append($"{corruption}:");
            foreach (int s in severities.Where(s => results.Has(corruption, s)))
                sb.Append($" ![{corruption} {s}]({RobustnessBenchmark.SamplesFolder}/{RobustnessBenchmark.SampleName(corruption, s)})");
            sb.AppendLine().AppendLine();
        }
        AtomicFile.WriteText(Path.Combine(dir, MarkdownFile), sb.ToString());
    }

    private static void WriteCharts(RobustnessResults results, string metric, string dir)
    {
        double clean = RobustnessResults.Value(results.Clean!, metric);
        // Severity 0 is the clean pass, shared by every line.
        // Undefined values (not run yet, pycocotools' −1) are left out of the line rather than drawn as −1.
        (string, double[], double[]) Line(string label, Func<int, double> at)
        {
            var points = results.Severities.Select(s => (X: (double)s, Y: at(s))).Prepend((X: 0.0, Y: clean)).Where(p => double.IsFinite(RobustnessSummary.Defined(p.Y))).ToList();
            return (label, points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
        }
        var perCorruption = results.Corruptions.Select(c => Line(c, s => results.Has(c, s) ? RobustnessResults.Value(results.Results[c][s], metric) : double.NaN)).ToList();
        ReportCharts.SaveLines(Path.Combine(dir, ChartName(metric)), $"{metric} against corruption severity (0: clean)", "severity", metric, perCorruption, markers: true, integerX: true);
        var groups = Groups(results);
        if (groups.Count > 1)
        {
            var perGroup = groups.Select(g => Line(g.Key, s => RobustnessSummary.Mean(g.Value.Where(c => results.Has(c, s)).Select(c => RobustnessResults.Value(results.Results[c][s], metric))))).ToList();
            ReportCharts.SaveLines(Path.Combine(dir, GroupChartName(metric)), $"{metric} against corruption severity, mean of each group (0: clean)", "severity",
                metric, perGroup, markers: true, integerX: true);
        }
    }

    private static Dictionary<string, List<string>> Groups(RobustnessResults results) =>
        results.Corruptions.GroupBy(ImageCorruptions.GroupOf).ToDictionary(g => g.Key, g => g.ToList());

    /// <summary>The metric at <paramref name="severity"/> averaged over the corruptions that have run it.</summary>
    private static double SeverityMean(RobustnessResults results, string metric, int severity) =>
        RobustnessSummary.Mean(results.Corruptions.Where(c => results.Has(c, severity)).Select(c => RobustnessResults.Value(results.Results[c][severity], metric)));

    private static string Percent(double ratio) => double.IsFinite(ratio) ? (100 * ratio).ToString("0.0", CultureInfo.InvariantCulture) + " %" : "n/a";
}
