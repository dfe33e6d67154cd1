using System.Globalization;
using System.Text;
using Vim.Core.IO;

namespace Vim.Data.Evaluation;

/// <summary>
/// Counts of ground truth (rows) against prediction (columns) over one list of labels, as mmseg's and mmdet's
/// tools/analysis_tools/confusion_matrix.py build them: labelled pixels for segmentation
/// (<see cref="SegmentationMetric.ToConfusionMatrix"/>), boxes with a last "background" row and column for detection.
/// </summary>
public sealed class ConfusionMatrix
{
    /// <summary>The first cell of the CSV's header row: what its rows and columns are.</summary>
    public const string CsvCorner = "ground truth \\ prediction";

    private readonly long[] _counts;
    private readonly string[] _labels;

    public ConfusionMatrix(IReadOnlyList<string> labels)
    {
        if (labels.Count == 0) throw new ArgumentException("a confusion matrix needs at least one label.", nameof(labels));
        _labels = [.. labels];
        _counts = new long[_labels.Length * _labels.Length];
    }

    /// <summary>Row and column names, in index order.</summary>
    public IReadOnlyList<string> Labels => _labels;

    public int Size => _labels.Length;

    public long this[int truth, int predicted] => _counts[Index(truth, predicted)];

    public void Add(int truth, int predicted, long count = 1) => _counts[Index(truth, predicted)] += count;

    /// <summary>Everything counted for ground truth <paramref name="truth"/>: the denominator of its row's percentages.</summary>
    public long RowSum(int truth)
    {
        long sum = 0;
        for (int p = 0; p < Size; p++) sum += this[truth, p];
        return sum;
    }

    /// <summary>
    /// Each row as a percentage of its sum, as both tools plot it (per_label_sums); a row with nothing counted is NaN
    /// (their division by zero), which the chart draws grey.
    /// </summary>
    public double[,] RowPercent()
    {
        var percent = new double[Size, Size];
        for (int t = 0; t < Size; t++)
        {
            double sum = RowSum(t);
            for (int p = 0; p < Size; p++) percent[t, p] = sum == 0 ? double.NaN : 100 * this[t, p] / sum;
        }
        return percent;
    }

    /// <summary>
    /// The counts as CSV (RFC 4180): a header row of <see cref="CsvCorner"/> and the prediction labels, then one row per
    /// ground-truth label; labels holding a comma, quote or line break are quoted.
    /// </summary>
    public string ToCsv()
    {
        var sb = new StringBuilder();
        sb.Append(CsvText.Field(CsvCorner));
        foreach (var label in _labels) sb.Append(',').Append(CsvText.Field(label));
        sb.Append("\r\n");
        for (int t = 0; t < Size; t++)
        {
            sb.Append(CsvText.Field(_labels[t]));
            for (int p = 0; p < Size; p++) sb.Append(',').Append(this[t, p].ToString(CultureInfo.InvariantCulture));
            sb.Append("\r\n");
        }
        return sb.ToString();
    }

    /// <summary>Writes <see cref="ToCsv"/> atomically.</summary>
    public void WriteCsv(string path) => AtomicFile.WriteText(path, ToCsv());

    private int Index(int truth, int predicted)
    {
        if ((uint)truth >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(truth), $"row {truth} is outside 0..{Size - 1}.");
        if ((uint)predicted >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(predicted), $"column {predicted} is outside 0..{Size - 1}.");
        return truth * Size + predicted;
    }
}
