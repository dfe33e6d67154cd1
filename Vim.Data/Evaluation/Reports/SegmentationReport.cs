using System.Globalization;
using System.Text;
using Vim.Core.IO;

namespace Vim.Data.Evaluation.Reports;

/// <summary>Report of a semantic-segmentation evaluation: per-class IoU bars and a Markdown table (percent, like mmseg).</summary>
public static class SegmentationReport
{
    /// <param name="appendix">Markdown added to summary.md after the table (the confusion matrix's section).</param>
    public static IReadOnlyList<string> Write(SegmentationResult result, IReadOnlyList<string> classNames, string dir, string title = "Semantic segmentation",
        string? appendix = null)
    {
        Directory.CreateDirectory(dir);
        string bars = Path.Combine(dir, "per_class_iou.png");
        ReportCharts.SaveBars(bars, $"{title}: IoU per class (mIoU {Pct(result.MIoU)})", "class", "IoU (%)", classNames,
            result.IoU.Select(v => v * 100).ToList());
        string md = Path.Combine(dir, "summary.md");
        AtomicFile.WriteText(md, Markdown(result, classNames, title, [Path.GetFileName(bars)]) + appendix);
        return [bars, md];
    }

    public static string Markdown(SegmentationResult r, IReadOnlyList<string> classNames, string title, IReadOnlyList<string> images)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {title}").AppendLine();
        sb.AppendLine("| aAcc | mIoU | mAcc | mDice | mFscore |").AppendLine("|---|---|---|---|---|");
        sb.AppendLine($"| {Pct(r.AAcc)} | {Pct(r.MIoU)} | {Pct(r.MAcc)} | {Pct(r.MDice)} | {Pct(r.MFscore)} |").AppendLine();
        sb.AppendLine("| class | IoU | Acc |").AppendLine("|---|---|---|");
        for (int i = 0; i < r.IoU.Length; i++) sb.AppendLine($"| {classNames[i]} | {Pct(r.IoU[i])} | {Pct(r.Acc[i])} |");
        sb.AppendLine();
        foreach (var img in images) sb.AppendLine($"![{img}]({img})").AppendLine();
        return sb.ToString();
    }

    /// <summary>
    /// The per-class IoU and Acc as plain text, one class a line in class order (what mmseg prints after each
    /// evaluation as "per class results"), in percent with "nan" for a class absent from labels and predictions.
    /// </summary>
    public static string PerClassTable(SegmentationResult r, IReadOnlyList<string> classNames)
    {
        int width = Math.Max(5, classNames.Max(n => n.Length));
        var sb = new StringBuilder();
        sb.AppendLine($"per class results:").AppendLine($"{"Class".PadRight(width)}  {"IoU",6}  {"Acc",6}");
        for (int i = 0; i < r.IoU.Length; i++)
            sb.AppendLine($"{classNames[i].PadRight(width)}  {Pct(r.IoU[i]),6}  {Pct(r.Acc[i]),6}");
        return sb.ToString().TrimEnd();
    }

    /// <summary>Percent with 2 decimals as mmseg prints it; "nan" for undefined.</summary>
    public static string Pct(double v) => double.IsNaN(v) ? "nan" : (v * 100).ToString("0.00", CultureInfo.InvariantCulture);
}
