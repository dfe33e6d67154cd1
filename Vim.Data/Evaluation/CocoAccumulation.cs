namespace Vim.Data.Evaluation;

/// <summary>
/// pycocotools' accumulated tables. <see cref="Precision"/> and <see cref="Scores"/> are
/// [T, R, K, A, M] (IoU threshold, recall threshold, category, area range, maxDets) flattened
/// row-major; <see cref="Recall"/> is [T, K, A, M]. −1 marks undefined entries.
/// </summary>
public sealed class CocoAccumulation
{
    internal CocoAccumulation(CocoEvalParams parameters, long[] categoryIds, string[] categoryNames, int[] maxDets,
        double[] precision, double[] recall, double[] scores)
    {
        Params = parameters;
        CategoryIds = categoryIds;
        CategoryNames = categoryNames;
        MaxDetections = maxDets;
        Precision = precision;
        Recall = recall;
        Scores = scores;
    }

    public CocoEvalParams Params { get; }
    public IReadOnlyList<long> CategoryIds { get; }
    public IReadOnlyList<string> CategoryNames { get; }
    /// <summary>maxDets in ascending order (the M axis).</summary>
    public IReadOnlyList<int> MaxDetections { get; }
    public double[] Precision { get; }
    public double[] Recall { get; }
    public double[] Scores { get; }

    public int T => Params.IouThresholds.Length;
    public int R => Params.RecallThresholds.Length;
    public int K => CategoryIds.Count;
    public int A => Params.AreaRanges.Length;
    public int M => MaxDetections.Count;

    public double PrecisionAt(int t, int r, int k, int a, int m) => Precision[((((long)t * R + r) * K + k) * A + a) * M + m];
    public double RecallAt(int t, int k, int a, int m) => Recall[((t * K + k) * A + a) * M + m];

    /// <summary>
    /// pycocotools' _summarize: the mean of the defined (&gt; −1) precision (AP) or recall (AR) entries,
    /// restricted to one IoU threshold (exact equality) when given, to the area ranges labelled
    /// <paramref name="areaLabel"/>, the maxDets equal to <paramref name="maxDets"/> and optionally one
    /// category; −1 when nothing is defined.
    /// </summary>
    public double Mean(bool averagePrecision, double? iouThreshold, string areaLabel, int maxDets, int? categoryIndex = null)
    {
        // Values are gathered in numpy's C order of the sliced table (t, r, k for precision; t, k for
        // recall) and summed pairwise like numpy.mean, so the result matches pycocotools to the last bits.
        var values = new List<double>();
        int k0 = categoryIndex ?? 0, k1 = categoryIndex is null ? K : k0 + 1;
        for (int t = 0; t < T; t++)
        {
            if (iouThreshold is { } thr && Params.IouThresholds[t] != thr) continue;
            int rCount = averagePrecision ? R : 1;
            for (int r = 0; r < rCount; r++)
            {
                for (int k = k0; k < k1; k++)
                {
                    for (int a = 0; a < A; a++)
                    {
                        if (Params.AreaRanges[a].Label != areaLabel) continue;
                        for (int m = 0; m < M; m++)
                        {
                            if (MaxDetections[m] != maxDets) continue;
                            double v = averagePrecision ? PrecisionAt(t, r, k, a, m) : RecallAt(t, k, a, m);
                            if (v > -1) values.Add(v);
                        }
                    }
                }
            }
        }
        return values.Count == 0 ? -1 : NumpySum(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(values)) / values.Count;
    }

    /// <summary>
    /// numpy's add.reduce of a contiguous float64 array: pairwise summation inside blocks of 8192
    /// elements (the reduction iterator's buffer size), the blocks added one after another to 0.
    /// </summary>
    internal static double NumpySum(ReadOnlySpan<double> values)
    {
        double sum = 0;
        for (int start = 0; start < values.Length; start += 8192)
            sum += PairwiseSum(values.Slice(start, Math.Min(8192, values.Length - start)));
        return sum;
    }

    private static double PairwiseSum(ReadOnlySpan<double> a)
    {
        int n = a.Length;
        if (n < 8)
        {
            double res = 0;
            for (int i = 0; i < n; i++) res += a[i];
            return res;
        }
        if (n <= 128)
        {
            double r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
            int i;
            for (i = 8; i < n - (n % 8); i += 8)
            {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3];
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7];
            }
            double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++) res += a[i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a[..n2]) + PairwiseSum(a[n2..]);
    }

    /// <summary>
    /// Precision–recall curve at one IoU threshold: precision averaged over the categories defined there
    /// at each recall threshold (NaN where no category is defined).
    /// </summary>
    public double[] MeanPrecisionCurve(int t, string areaLabel = "all", int maxDets = 100)
    {
        var curve = new double[R];
        int a = Array.FindIndex(Params.AreaRanges, x => x.Label == areaLabel);
        int m = MaxDetections.ToList().IndexOf(maxDets);
        for (int r = 0; r < R; r++)
        {
            double sum = 0;
            int n = 0;
            if (a >= 0 && m >= 0)
            {
                for (int k = 0; k < K; k++)
                {
                    double v = PrecisionAt(t, r, k, a, m);
                    if (v > -1) { sum += v; n++; }
                }
            }
            curve[r] = n == 0 ? double.NaN : sum / n;
        }
        return curve;
    }
}
