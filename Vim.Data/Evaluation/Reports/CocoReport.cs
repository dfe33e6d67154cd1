using System.Globalization;
using System.Text;
using Vim.Core.IO;

namespace Vim.Data.Evaluation.Reports;

/// <summary>
/// Report of a COCO evaluation: precision–recall curves per IoU threshold (area all, maxDets 100,
/// precision averaged over categories), per-category AP bars and a Markdown summary.
/// </summary>
public static class CocoReport
{
    /// <summary>Writes pr_curves.png, per_category_ap.png and summary.md into <paramref name="dir"/>; returns the files.</summary>
    /// <param name="appendix">Markdown added to summary.md after the charts (the confusion matrix's section).</param>
    public static IReadOnlyList<string> Write(CocoSummary summary, string dir, string title = "COCO evaluation", string? appendix = null)
    {
        Directory.CreateDirectory(dir);
        var acc = summary.Accumulation;
        int maxDets = summary.PerCategoryMaxDets;
        var recall = acc.Params.RecallThresholds;
        var series = new List<(string, double[], double[])>();
        for (int t = 0; t < acc.T; t++)
        {
            var curve = acc.MeanPrecisionCurve(t, maxDets: maxDets);
            if (curve.All(double.IsNaN)) continue;
            series.Add(($"IoU={acc.Params.IouThresholds[t].ToString("0.00", CultureInfo.InvariantCulture)}", recall, curve));
        }
        var files = new List<string>();
        if (series.Count > 0)
        {
            string pr = Path.Combine(dir, "pr_curves.png");
            ReportCharts.SaveLines(pr, $"{title}: precision-recall (area=all, maxDets={maxDets})", "recall", "precision", series, 0, 1.02);
            files.Add(pr);
        }
        string bars = Path.Combine(dir, "per_category_ap.png");
        // Percent, as metrics.json and the training log hold AP (detectron2's convention).
        ReportCharts.SaveBars(bars, $"{title}: AP@[.50:.95] per category (maxDets={maxDets})", "category", "AP (%)",
            summary.PerCategory.Select(c => c.Name).ToList(), summary.PerCategory.Select(c => Percent(c.Ap)).ToList());
        files.Add(bars);
        string md = Path.Combine(dir, "summary.md");
        AtomicFile.WriteText(md, Markdown(summary, title, files.Select(Path.GetFileName).ToList()!) + appendix);
        files.Add(md);
        return files;
    }

    /// <summary>
    /// The tables in percent (metrics.json's and the log's unit, detectron2's; "-" where pycocotools reports −1), then
    /// pycocotools' own summary text, whose numbers are fractions.
    /// </summary>
    public static string Markdown(CocoSummary summary, string title, IReadOnlyList<string> images)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {title}").AppendLine();
        sb.AppendLine("| metric | value (%) |").AppendLine("|---|---|");
        for (int i = 0; i < 12; i++) sb.AppendLine($"| {summary.StatNames[i]} | {Fmt(summary.Stats[i])} |");
        sb.AppendLine().AppendLine("pycocotools' summary (fractions):").AppendLine();
        sb.AppendLine("```").Append(summary.ToString()).AppendLine("```").AppendLine();
        sb.AppendLine($"## Per category (%, maxDets={summary.PerCategoryMaxDets})").AppendLine();
        sb.AppendLine($"| id | name | AP | AP50 | AP75 | AR@{summary.PerCategoryMaxDets} |").AppendLine("|---|---|---|---|---|---|");
        foreach (var c in summary.PerCategory)
            sb.AppendLine($"| {c.CategoryId} | {c.Name} | {Fmt(c.Ap)} | {Fmt(c.Ap50)} | {Fmt(c.Ap75)} | {Fmt(c.Ar)} |");
        sb.AppendLine();
        foreach (var img in images) sb.AppendLine($"![{img}]({img})").AppendLine();
        return sb.ToString();
    }

    /// <summary>A fraction in percent; −1 (undefined) stays −1, which the bar chart draws empty.</summary>
    private static double Percent(double v) => v < 0 ? v : 100 * v;

    /// <summary>A fraction in percent with two decimals, "-" where pycocotools reports −1 (undefined).</summary>
    public static string Fmt(double v) => v < 0 ? "-" : (100 * v).ToString("0.00", CultureInfo.InvariantCulture);
}
