using System.Text;
using System.Text.Json;
using Vim.Core;
using Vim.Core.IO;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;

namespace Vim.Detection;

/// <summary>
/// The outcome of `vim eval fuse`: the box AP of every input results file and of their fusion
/// (<see cref="WeightedBoxesFusion"/>), as a Markdown table (summary.md) and metrics.json.
/// </summary>
public static class FusionReport
{
    public const string SummaryFile = "summary.md";
    public const string MetricsFile = "metrics.json";

    /// <summary>One evaluated results file: its name in the table, its weight (null for the fusion), detections and box AP.</summary>
    public sealed record Row(string Results, double? Weight, int Detections, CocoSummary Box);

    /// <summary>COCO box AP of <paramref name="detections"/>; an evaluator's refusal names both files.</summary>
    public static CocoSummary EvaluateBoxes(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, string groundTruthSource, string resultsSource)
    {
        try
        {
            return new CocoEvaluator(groundTruth, detections, CocoIouType.Bbox).Run();
        }
        catch (VimException e)
        {
            // The evaluator names the entry (results[i], a ground-truth annotation id); the files are named here.
            throw new VimException($"{resultsSource} against {groundTruthSource}: {e.Message}", e);
        }
    }

    /// <summary>summary.md: the settings, the notes (masks left out) and the <see cref="Table"/>.</summary>
    public static string Markdown(IReadOnlyList<Row> inputs, Row fused, string settings, IReadOnlyList<string> notes)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Weighted Boxes Fusion").AppendLine();
        sb.AppendLine(settings).AppendLine();
        foreach (var note in notes) sb.AppendLine(note).AppendLine();
        return sb.Append(Table(inputs, fused)).ToString();
    }

    /// <summary>The Markdown table (AP, AP50, AP75 in percent, "-" where undefined): the inputs, then the fusion.</summary>
    public static string Table(IReadOnlyList<Row> inputs, Row fused)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| results | weight | detections | box AP | AP50 | AP75 |").AppendLine("|---|---|---|---|---|---|");
        foreach (var row in inputs.Append(fused))
        {
            string weight = row.Weight is { } w ? WeightedBoxesFusionSettings.Number(w) : "fused";
            sb.AppendLine($"| {row.Results} | {weight} | {row.Detections} | {CocoReport.Fmt(row.Box.Stats[0])} | {CocoReport.Fmt(row.Box.Stats[1])} | {CocoReport.Fmt(row.Box.Stats[2])} |");
        }
        return sb.ToString();
    }

    /// <summary>
    /// Writes summary.md and metrics.json into <paramref name="dir"/> (each atomically): per row mmdet's box items in percent
    /// (bbox_mAP, bbox_mAP_50, …, as <see cref="DetectionTask.Metrics"/> names them), with the settings. Returns both paths.
    /// </summary>
    public static (string Summary, string Metrics) Write(string dir, IReadOnlyList<Row> inputs, Row fused, WeightedBoxesFusionSettings settings,
        IReadOnlyList<string> notes)
    {
        Directory.CreateDirectory(dir);
        string summary = Path.Combine(dir, SummaryFile);
        AtomicFile.WriteText(summary, Markdown(inputs, fused, settings.Describe(inputs.Count), notes));
        Dictionary<string, object> Entry(Row row)
        {
            var entry = new Dictionary<string, object> { ["results"] = row.Results, ["detections"] = row.Detections };
            if (row.Weight is { } w) entry["weight"] = w;
            foreach (var (name, value) in DetectionTask.Metrics((row.Box, null))) entry[name] = value;
            return entry;
        }
        var document = new Dictionary<string, object>
        {
            ["settings"] = new Dictionary<string, object>
            {
                ["weights"] = settings.WeightsFor(inputs.Count),
                ["iou_thr"] = settings.IouThreshold,
                ["skip_box_thr"] = settings.SkipBoxThreshold,
                ["conf_type"] = WeightedBoxesFusionSettings.NameOf(settings.Confidence),
                ["allows_overflow"] = settings.AllowsOverflow,
            },
            ["inputs"] = inputs.Select(Entry).ToList(),
            ["fused"] = Entry(fused),
        };
        string metrics = Path.Combine(dir, MetricsFile);
        AtomicFile.WriteText(metrics, JsonSerializer.Serialize(document, MetricJson.Indented));
        return (summary, metrics);
    }
}
