using System.Globalization;
using System.Text;
using Vim.Core.IO;

namespace Vim.Data.Evaluation.Reports;

/// <summary>
/// A <see cref="CocoErrorAnalysis"/> as files: a stacked precision–recall chart per area range for all categories
/// together (overall_AREA.png) and for each category (per_category/ID_NAME_AREA.png), summary.md (the stages' AP in
/// percent, a row per category and one for the overall mean) and errors.json (every curve and AP), each written atomically.
/// </summary>
public static class CocoErrorReport
{
    public const string SummaryName = "summary.md";
    public const string JsonName = "errors.json";
    /// <summary>The folder of the per-category charts (K × areas of them: `vim report` leaves them out of its page).</summary>
    public const string PerCategoryFolder = "per_category";

    /// <summary>Writes every file into <paramref name="dir"/>; returns their paths, summary.md last.</summary>
    public static IReadOnlyList<string> Write(CocoErrorAnalysis analysis, string dir, string title)
    {
        Directory.CreateDirectory(dir);
        var files = new List<string>();
        var recall = analysis.RecallThresholds.ToArray();
        string type = CocoErrorAnalysis.Describe(analysis.IouType);
        var overallCharts = new string?[analysis.AreaRanges.Count];
        var categoryCharts = new string?[analysis.CategoryIds.Count, analysis.AreaRanges.Count];
        for (int a = 0; a < analysis.AreaRanges.Count; a++)
        {
            string area = analysis.AreaRanges[a].Label;
            var overall = CocoErrorAnalysis.Stages.Select(s => (s, analysis.OverallCurve(s, a), analysis.OverallAp(s, a))).ToList();
            if (overall[0].Item3 > -1)
            {
                overallCharts[a] = Path.Combine(dir, $"overall_{area}.png");
                SaveChart(overallCharts[a]!, $"{title}: {type}, all categories, area {area}", recall, overall);
            }
            for (int k = 0; k < analysis.CategoryIds.Count; k++)
            {
                if (!analysis.IsDefined(k, a)) continue;
                categoryCharts[k, a] = Path.Combine(dir, PerCategoryFolder, $"{analysis.CategoryIds[k].ToString(CultureInfo.InvariantCulture)}_{FileNamePart(analysis.CategoryNames[k])}_{area}.png");
                SaveChart(categoryCharts[k, a]!, $"{title}: {type}, {analysis.CategoryNames[k]}, area {area}", recall,
                    CocoErrorAnalysis.Stages.Select(s => (s, analysis.Curve(s, k, a), analysis.Ap(s, k, a))).ToList());
            }
        }
        files.AddRange(overallCharts.OfType<string>());
        files.AddRange(categoryCharts.Cast<string?>().OfType<string>());
        string json = Path.Combine(dir, JsonName);
        AtomicFile.WriteText(json, System.Text.Json.JsonSerializer.Serialize(JsonModel(analysis), MetricJson.Compact));
        files.Add(json);
        string md = Path.Combine(dir, SummaryName);
        AtomicFile.WriteText(md, Markdown(analysis, title, dir, overallCharts, categoryCharts));
        files.Add(md);
        return files;
    }

    /// <summary>What each stage forgives, for the summary (mmdet's rules; see <see cref="CocoErrorAnalysis"/>).</summary>
    public static string Rule(CocoErrorStage stage) => stage switch
    {
        CocoErrorStage.C75 => "AP at IoU 0.75",
        CocoErrorStage.C50 => "AP at IoU 0.5",
        CocoErrorStage.Loc => "AP at IoU 0.1: localisation errors forgiven",
        CocoErrorStage.Sim => "Loc, with detections on objects of another category of the same supercategory ignored",
        CocoErrorStage.Oth => "Loc, with detections on objects of any other category ignored",
        CocoErrorStage.BG => "Oth, with detections on background removed too: precision 1 up to Oth's recall",
        CocoErrorStage.FN => "every error removed, missed objects included: precision 1 at every recall (100 wherever the category has objects)",
        _ => throw new ArgumentOutOfRangeException(nameof(stage)),
    };

    /// <summary>
    /// A section for another summary (vim test's bbox/summary.md): the overall stage APs of area "all" and a link to the
    /// analysis's own summary in <paramref name="errorsDir"/>.
    /// </summary>
    public static string LinkSection(string summaryDir, string errorsDir, CocoErrorAnalysis analysis)
    {
        string link = Path.GetRelativePath(summaryDir, Path.Combine(errorsDir, SummaryName)).Replace(Path.DirectorySeparatorChar, '/');
        var sb = new StringBuilder();
        sb.AppendLine("## Error analysis").AppendLine();
        int a = Math.Max(0, analysis.AreaRanges.ToList().FindIndex(r => r.Label == "all"));
        sb.AppendLine($"AP (%, area {analysis.AreaRanges[a].Label}) as each kind of error is forgiven in turn (mmdet's coco_error_analysis.py): " +
            string.Join(", ", CocoErrorAnalysis.Stages.Select(s => $"{s} {Fmt(analysis.OverallAp(s, a))}")) +
            $". Per category, per area range and the charts: [{link}]({link}).").AppendLine();
        return sb.ToString();
    }

    private static void SaveChart(string path, string title, double[] recall, IReadOnlyList<(CocoErrorStage Stage, double[] Curve, double Ap)> stages) =>
        ReportCharts.SaveLines(path, title, "recall", "precision",
            stages.Select(s => ($"{s.Stage}: {Fmt(s.Ap)}", recall, s.Curve)).ToList(), 0, 1.02, legend: ScottPlot.Alignment.UpperRight, stacked: true);

    private static string Markdown(CocoErrorAnalysis analysis, string title, string dir, string?[] overallCharts, string?[,] categoryCharts)
    {
        string Link(string file) => Path.GetRelativePath(dir, file).Replace(Path.DirectorySeparatorChar, '/');
        var sb = new StringBuilder();
        sb.AppendLine($"# {title}: error analysis ({CocoErrorAnalysis.Describe(analysis.IouType)})").AppendLine();
        sb.AppendLine($"AP in percent at maxDets {CocoErrorAnalysis.MaxDetections}, as mmdet's tools/analysis_tools/coco_error_analysis.py computes it; " +
            "each stage forgives one more kind of error than the one before, so the gap between two stages is what that kind of error costs:").AppendLine();
        foreach (var stage in CocoErrorAnalysis.Stages) sb.AppendLine($"- **{stage}**: {Rule(stage)}.");
        sb.AppendLine().AppendLine("\"-\": the category has no object of that size (left out of the overall mean, as COCOeval leaves it out). " +
            string.Create(CultureInfo.InvariantCulture, $"{analysis.CategoryIds.Count} categories, analysed in {analysis.Elapsed.TotalSeconds:0.0} s; the numbers: {JsonName}.")).AppendLine();
        string header = "| category | " + string.Join(" | ", CocoErrorAnalysis.Stages) + " | chart |";
        string rule = "|---|" + string.Concat(Enumerable.Repeat("---|", CocoErrorAnalysis.Stages.Count)) + "---|";
        for (int a = 0; a < analysis.AreaRanges.Count; a++)
        {
            sb.AppendLine($"## Area {analysis.AreaRanges[a].Label}").AppendLine();
            if (overallCharts[a] is { } overall) sb.AppendLine($"![all categories, area {analysis.AreaRanges[a].Label}]({Link(overall)})").AppendLine();
            sb.AppendLine(header).AppendLine(rule);
            sb.AppendLine("| **overall** | " + string.Join(" | ", CocoErrorAnalysis.Stages.Select(s => Fmt(analysis.OverallAp(s, a)))) + " | |");
            for (int k = 0; k < analysis.CategoryIds.Count; k++)
            {
                string chart = categoryCharts[k, a] is { } c ? $"[png]({Link(c)})" : "";
                sb.AppendLine($"| {analysis.CategoryNames[k]} | " + string.Join(" | ", CocoErrorAnalysis.Stages.Select(s => Fmt(analysis.Ap(s, k, a)))) + $" | {chart} |");
            }
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>
    /// errors.json: AP in percent and precision curves (fractions, at <c>recall_thresholds</c>) per area range, overall and
    /// per category; null where undefined.
    /// </summary>
    private static object JsonModel(CocoErrorAnalysis analysis)
    {
        double Percent(double ap) => ap < 0 ? double.NaN : 100 * ap;
        double[]? Defined(double[] curve) => curve.Any(v => v < 0 || double.IsNaN(v)) ? null : curve;
        Dictionary<string, object> Area(Func<CocoErrorStage, double> ap, Func<CocoErrorStage, double[]> curve) => new()
        {
            ["ap"] = CocoErrorAnalysis.Stages.ToDictionary(s => s.ToString(), s => Percent(ap(s))),
            ["precision"] = CocoErrorAnalysis.Stages.ToDictionary(s => s.ToString(), s => Defined(curve(s))),
        };
        var areas = analysis.AreaRanges;
        return new Dictionary<string, object?>
        {
            ["iou_type"] = CocoErrorAnalysis.Describe(analysis.IouType),
            ["max_dets"] = CocoErrorAnalysis.MaxDetections,
            ["stages"] = CocoErrorAnalysis.Stages.Select(s => s.ToString()).ToArray(),
            ["area_ranges"] = areas.Select(r => new { label = r.Label, min = r.Min, max = r.Max }).ToArray(),
            ["recall_thresholds"] = analysis.RecallThresholds,
            ["overall"] = Enumerable.Range(0, areas.Count).ToDictionary(a => areas[a].Label,
                a => Area(s => analysis.OverallAp(s, a), s => analysis.OverallCurve(s, a))),
            ["categories"] = Enumerable.Range(0, analysis.CategoryIds.Count).Select(k => new Dictionary<string, object?>
            {
                ["id"] = analysis.CategoryIds[k],
                ["name"] = analysis.CategoryNames[k],
                ["supercategory"] = analysis.Supercategories[k],
                ["areas"] = Enumerable.Range(0, areas.Count).ToDictionary(a => areas[a].Label,
                    a => Area(s => analysis.Ap(s, k, a), s => analysis.Curve(s, k, a))),
            }).ToArray(),
        };
    }

    /// <summary>A category name as part of a file name: letters and digits kept, anything else an underscore.</summary>
    private static string FileNamePart(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '_').ToArray();
        return chars.Length == 0 ? "_" : new string(chars);
    }

    private static string Fmt(double v) => CocoReport.Fmt(v);
}
