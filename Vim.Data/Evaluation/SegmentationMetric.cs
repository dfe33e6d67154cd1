using System.Numerics;
namespace Vim.Data.Evaluation;

/// <summary>
/// mmsegmentation's IoU metric over a dataset: pixel counts are summed over all images before any
/// division (not averaged per image). Pixels whose label is <see cref="IgnoreIndex"/> are dropped from
/// both maps; values outside 0..K−1 drop out of the histogram they fall in, as torch.histc does in
/// mmseg. Merge instances from several workers with <see cref="Add"/> (sums of counts).
/// reduce_zero_label is the caller's step (<see cref="ReduceZeroLabel"/>) before <see cref="Update"/>.
/// </summary>
public sealed class SegmentationMetric
{
    private readonly long[] _confusion;   // [label, pred], both in range
    private readonly long[] _predOnly;     // pred in range, label out of range (and not ignored)
    private readonly long[] _labelOnly;    // label in range, pred out of range

    public SegmentationMetric(int numClasses, int ignoreIndex = 255)
    {
        if (numClasses <= 0) throw new ArgumentOutOfRangeException(nameof(numClasses), "number of classes must be positive.");
        NumClasses = numClasses;
        IgnoreIndex = ignoreIndex;
        _confusion = new long[numClasses * numClasses];
        _predOnly = new long[numClasses];
        _labelOnly = new long[numClasses];
    }

    public int NumClasses { get; }
    public int IgnoreIndex { get; }

    /// <summary>Confusion count of pixels labelled <paramref name="label"/> and predicted <paramref name="pred"/>.</summary>
    public long Confusion(int label, int pred) => _confusion[label * NumClasses + pred];

    /// <summary>
    /// Adds one image: prediction and label maps of equal length in any layout, of any integer type
    /// (int, the byte of 8-bit PNGs, the ushort of datasets' label maps).
    /// </summary>
    public void Update<T>(ReadOnlySpan<T> pred, ReadOnlySpan<T> label) where T : unmanaged, IBinaryInteger<T>
    {
        if (pred.Length != label.Length)
            throw new ArgumentException($"prediction has {pred.Length} pixels but label has {label.Length}.");
        int k = NumClasses;
        for (int i = 0; i < pred.Length; i++)
        {
            int l = int.CreateTruncating(label[i]);
            if (l == IgnoreIndex) continue;
            int p = int.CreateTruncating(pred[i]);
            bool pIn = (uint)p < (uint)k, lIn = (uint)l < (uint)k;
            if (pIn && lIn) _confusion[l * k + p]++;
            else if (pIn) _predOnly[p]++;
            else if (lIn) _labelOnly[l]++;
        }
    }

    /// <summary>
    /// The pixel counts of ground truth (rows) against prediction (columns), mmseg's confusion_matrix.py: pixels at the
    /// ignore index are left out (reduce_zero_label was applied before <see cref="Update"/>), and so are pixels whose
    /// label or prediction lies outside 0..K−1 (mmseg's bincount has no cell for them; the areas of <see cref="Compute"/>
    /// count them on their in-range side). The diagonal is each class's intersection.
    /// </summary>
    public ConfusionMatrix ToConfusionMatrix(IReadOnlyList<string> classNames)
    {
        if (classNames.Count != NumClasses)
            throw new ArgumentException($"{NumClasses} classes need {NumClasses} names, got {classNames.Count}.", nameof(classNames));
        var matrix = new ConfusionMatrix(classNames);
        for (int l = 0; l < NumClasses; l++)
            for (int p = 0; p < NumClasses; p++)
                matrix.Add(l, p, _confusion[l * NumClasses + p]);
        return matrix;
    }

    /// <summary>Adds another worker's counts (distributed evaluation).</summary>
    public void Add(SegmentationMetric other)
    {
        if (other.NumClasses != NumClasses || other.IgnoreIndex != IgnoreIndex)
            throw new ArgumentException("cannot merge segmentation metrics with different classes or ignore index.");
        for (int i = 0; i < _confusion.Length; i++) _confusion[i] += other._confusion[i];
        for (int i = 0; i < NumClasses; i++)
        {
            _predOnly[i] += other._predOnly[i];
            _labelOnly[i] += other._labelOnly[i];
        }
    }

    /// <summary>
    /// Every count in one array (confusion matrix, then prediction-only, then label-only counts): what
    /// the ranks of a distributed evaluation sum (as int64, exact) to merge their shares.
    /// </summary>
    public long[] ExportCounts() => [.. _confusion, .. _predOnly, .. _labelOnly];

    /// <summary>Replaces all counts by <paramref name="counts"/>, laid out as <see cref="ExportCounts"/> returns them.</summary>
    public void ImportCounts(ReadOnlySpan<long> counts)
    {
        int k = NumClasses;
        if (counts.Length != k * k + 2 * k)
            throw new ArgumentException($"expected {k * k + 2 * k} counts for {k} classes, got {counts.Length}.", nameof(counts));
        counts[..(k * k)].CopyTo(_confusion);
        counts.Slice(k * k, k).CopyTo(_predOnly);
        counts.Slice(k * k + k, k).CopyTo(_labelOnly);
    }

    /// <summary>Per-class and mean numbers; NaN per class where undefined, excluded from the means (nanmean).</summary>
    public SegmentationResult Compute(double fScoreBeta = 1)
    {
        int k = NumClasses;
        var inter = new double[k];
        var predArea = new double[k];
        var labelArea = new double[k];
        long total = 0, agree = 0;
        var rowSum = new double[k];
        var colSum = new double[k];
        for (int l = 0; l < k; l++)
        {
            for (int p = 0; p < k; p++)
            {
                long v = _confusion[l * k + p];
                predArea[p] += v;
                labelArea[l] += v;
                rowSum[l] += v;
                colSum[p] += v;
                total += v;
                if (l == p) { inter[l] += v; agree += v; }
            }
        }
        for (int i = 0; i < k; i++)
        {
            predArea[i] += _predOnly[i];
            labelArea[i] += _labelOnly[i];
        }
        var iou = new double[k];
        var acc = new double[k];
        var dice = new double[k];
        var precision = new double[k];
        var recall = new double[k];
        var fscore = new double[k];
        double beta2 = fScoreBeta * fScoreBeta;
        double sumInter = 0, sumLabel = 0;
        for (int i = 0; i < k; i++)
        {
            iou[i] = inter[i] / (predArea[i] + labelArea[i] - inter[i]);
            acc[i] = inter[i] / labelArea[i];
            dice[i] = 2 * inter[i] / (predArea[i] + labelArea[i]);
            precision[i] = inter[i] / predArea[i];
            recall[i] = inter[i] / labelArea[i];
            fscore[i] = (1 + beta2) * (precision[i] * recall[i]) / (beta2 * precision[i] + recall[i]);
            sumInter += inter[i];
            sumLabel += labelArea[i];
        }
        // Cohen's kappa on the in-range confusion matrix (mmeval's definition).
        double po = agree / (double)total;
        double pe = 0;
        for (int i = 0; i < k; i++) pe += rowSum[i] * colSum[i];
        pe /= (double)total * total;
        double kappa = (po - pe) / (1 - pe);
        return new SegmentationResult(sumInter / sumLabel, NanMean(iou), NanMean(acc), NanMean(dice), NanMean(precision),
            NanMean(recall), NanMean(fscore), kappa, iou, acc, dice, precision, recall, fscore);
    }

    private static double NanMean(double[] values)
    {
        double sum = 0;
        int n = 0;
        foreach (var v in values)
        {
            if (double.IsNaN(v)) continue;
            sum += v;
            n++;
        }
        return n == 0 ? double.NaN : sum / n;
    }
}
