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
        double sum = 0;
        long count = 0;
        for (int t = 0; t < T; t++)
        {
            if (iouThreshold is { } thr && Params.IouThresholds[t] != thr) continue;
            for (int a = 0; a < A; a++)
            {
                if (Params.AreaRanges[a].Label != areaLabel) continue;
                for (int m = 0; m < M; m++)
                {
                    if (MaxDetections[m] != maxDets) continue;
                    int k0 = categoryIndex ?? 0, k1 = categoryIndex is null ? K : k0 + 1;
                    for (int k = k0; k < k1; k++)
                    {
                        if (averagePrecision)
                        {
                            for (int r = 0; r < R; r++)
                            {
                                double v = PrecisionAt(t, r, k, a, m);
                                if (v > -1) { sum += v; count++; }
                            }
                        }
                        else
                        {
                            double v = RecallAt(t, k, a, m);
                            if (v > -1) { sum += v; count++; }
                        }
                    }
                }
            }
        }
        return count == 0 ? -1 : sum / count;
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
