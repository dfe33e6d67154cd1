using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Assigns each prediction to its best ground truth by a quality matrix (IoU) and labels it by the
/// band its best quality falls in (Detectron2's Matcher). With thresholds [t1, …, tk] and labels
/// [l0, …, lk], a best quality q gets l_i where t_i ≤ q &lt; t_{i+1} (t_0 = −∞, t_{k+1} = +∞).
/// </summary>
public sealed class Matcher
{
    private readonly double[] thresholds;
    private readonly int[] labels;

    /// <summary>
    /// True: every ground truth also claims the predictions that reach its own highest quality
    /// (ties included), labelled 1, even when that quality is below the positive threshold.
    /// As in Detectron2 this includes a ground truth whose best quality is 0 (it then claims all
    /// predictions it does not overlap); callers drop empty ground-truth boxes first.
    /// </summary>
    public bool AllowLowQualityMatches { get; }

    public IReadOnlyList<double> Thresholds => thresholds;
    public IReadOnlyList<int> Labels => labels;

    public Matcher(IReadOnlyList<double> thresholds, IReadOnlyList<int> labels, bool allowLowQualityMatches)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        ArgumentNullException.ThrowIfNull(labels);
        if (thresholds.Count == 0)
            throw new ArgumentException("Matcher: at least one threshold is required.", nameof(thresholds));
        for (int i = 1; i < thresholds.Count; i++)
            if (thresholds[i] < thresholds[i - 1])
                throw new ArgumentException($"Matcher: thresholds must be non-decreasing, got [{string.Join(", ", thresholds)}].", nameof(thresholds));
        if (labels.Count != thresholds.Count + 1)
            throw new ArgumentException(
                $"Matcher: {thresholds.Count} thresholds need {thresholds.Count + 1} labels, got {labels.Count}.", nameof(labels));
        if (labels.Any(l => l < -1 || l > 1))
            throw new ArgumentException($"Matcher: labels must be -1, 0 or 1, got [{string.Join(", ", labels)}].", nameof(labels));
        this.thresholds = thresholds.ToArray();
        this.labels = labels.ToArray();
        AllowLowQualityMatches = allowLowQualityMatches;
    }

    /// <param name="qualityMatrix">(M ground truths, N predictions) quality, typically IoU.</param>
    public MatchResult Match(Tensor qualityMatrix)
    {
        if (qualityMatrix.dim() != 2)
            throw new ArgumentException(
                $"Matcher: the quality matrix must be 2-D (ground truths × predictions), got ({string.Join(", ", qualityMatrix.shape)}).");
        var device = qualityMatrix.device;
        long n = qualityMatrix.shape[1];
        if (qualityMatrix.numel() == 0)
        {
            // No ground truth (or no prediction): everything takes the lowest band's label.
            return new MatchResult(zeros(n, ScalarType.Int64, device), full(n, labels[0], ScalarType.Int8, device));
        }
        using var scope = NewDisposeScope();
        var (bestQuality, matches) = qualityMatrix.max(0);
        var matchLabels = ones(n, ScalarType.Int8, device);
        for (int i = 0; i < labels.Length; i++)
        {
            double low = i == 0 ? double.NegativeInfinity : thresholds[i - 1];
            double high = i == labels.Length - 1 ? double.PositiveInfinity : thresholds[i];
            var band = bestQuality.ge(low).logical_and(bestQuality.lt(high));
            matchLabels.masked_fill_(band, labels[i]);
        }
        if (AllowLowQualityMatches)
        {
            var bestPerGt = qualityMatrix.max(1).values;
            var claimed = qualityMatrix.eq(bestPerGt.unsqueeze(1)).any(0);
            matchLabels.masked_fill_(claimed, 1);
        }
        return new MatchResult(matches.MoveToOuterDisposeScope(), matchLabels.MoveToOuterDisposeScope());
    }
}
