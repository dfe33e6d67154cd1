using System.Text;

namespace Vim.Data.Evaluation.Reports;

/// <summary>
/// A confusion matrix as files: confusion_matrix.csv (the counts) and confusion_matrix.png (each ground-truth row in
/// percent, as mmdet's and mmseg's confusion_matrix.py plot it), and the Markdown that links them from a summary.
/// </summary>
public static class ConfusionMatrixReport
{
    public const string CsvName = "confusion_matrix.csv";
    public const string PngName = "confusion_matrix.png";

    /// <summary>Writes both files (each atomically) into <paramref name="dir"/>; returns their paths.</summary>
    public static (string Csv, string Png) Write(ConfusionMatrix matrix, string dir, string title)
    {
        Directory.CreateDirectory(dir);
        var csv = Path.Combine(dir, CsvName);
        matrix.WriteCsv(csv);
        var png = Path.Combine(dir, PngName);
        ReportCharts.SaveHeatmap(png, title, "prediction", "ground truth", matrix.Labels, matrix.Labels, matrix.RowPercent());
        return (csv, png);
    }

    /// <summary>A "Confusion matrix" section for a summary.md in <paramref name="summaryDir"/>: the rule that filled it, and links to both files.</summary>
    public static string Markdown(string summaryDir, (string Csv, string Png) files, string rule)
    {
        string csv = Link(summaryDir, files.Csv), png = Link(summaryDir, files.Png);
        var sb = new StringBuilder();
        sb.AppendLine("## Confusion matrix").AppendLine();
        sb.AppendLine($"{rule} Counts: [{Path.GetFileName(files.Csv)}]({csv}) (rows: ground truth, columns: prediction); the chart shows each row in percent of its sum.").AppendLine();
        sb.AppendLine($"![confusion matrix]({png})").AppendLine();
        return sb.ToString();
    }

    /// <summary>What <see cref="SegmentationMetric.ToConfusionMatrix"/> counts, for <see cref="Markdown"/>.</summary>
    public static string SegmentationRule(int ignoreIndex, bool reduceZeroLabel) =>
        $"Pixels: each labelled pixel counts once in [its label, its prediction]; pixels labelled {ignoreIndex} (the ignore index" +
        (reduceZeroLabel ? ", which reduce_zero_label makes of label 0" : "") + ") are left out, as in mmseg's confusion_matrix.py. " +
        "The diagonal holds each class's intersection with its prediction, and a row's sum the class's labelled area.";

    /// <summary>A relative link with forward slashes, which Markdown renderers expect on every system.</summary>
    internal static string Link(string fromDir, string file) => Path.GetRelativePath(fromDir, file).Replace(Path.DirectorySeparatorChar, '/');
}
