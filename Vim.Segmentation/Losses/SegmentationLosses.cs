using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Segmentation.Losses;

/// <summary>
/// Pixel losses for semantic segmentation, with mmseg's conventions: logits are first resized
/// (bilinear, align_corners false) to the label map; pixels equal to the ignore index contribute
/// nothing.
/// </summary>
public static class SegmentationLosses
{
    /// <summary>
    /// Cross-entropy. mmseg 0.x (the official Vim setup) averages over all pixels, ignored ones
    /// counting as zero (<paramref name="averageOverNonIgnored"/> false); true averages over the
    /// labelled pixels only, as PyTorch's ignore_index does. <paramref name="pixelWeights"/> (B, H, W), a pixel sampler's
    /// (mmseg's seg_weight), multiplies each pixel's loss before that average, whose divisor stays the pixel count.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, long ignoreIndex = 255, Tensor? classWeights = null,
        bool averageOverNonIgnored = false, Tensor? pixelWeights = null)
    {
        using var scope = NewDisposeScope();
        var perPixel = CrossEntropyPerPixel(logits, labels, ignoreIndex, classWeights);
        return Reduce(perPixel, labels, ignoreIndex, averageOverNonIgnored, pixelWeights).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="CrossEntropy"/> of pixel losses already computed (<see cref="CrossEntropyPerPixel"/>, B × H × W): each
    /// times its <paramref name="pixelWeights"/>, averaged over every pixel or over the labelled ones. For a caller that
    /// also reads the pixel losses (a sampler ranking them), so they are computed once.
    /// </summary>
    public static Tensor Reduce(Tensor perPixel, Tensor labels, long ignoreIndex, bool averageOverNonIgnored, Tensor? pixelWeights)
    {
        using var scope = NewDisposeScope();
        if (pixelWeights is not null) perPixel = perPixel * pixelWeights;
        Tensor loss;
        if (averageOverNonIgnored)
        {
            var valid = labels.ne(ignoreIndex).sum().clamp_min(1);
            loss = perPixel.sum() / valid;
        }
        else
        {
            loss = perPixel.mean();
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Each pixel's cross-entropy (B, H, W), weighted by its class's weight; 0 at ignored pixels.</summary>
    public static Tensor CrossEntropyPerPixel(Tensor logits, Tensor labels, long ignoreIndex = 255, Tensor? classWeights = null) =>
        nn.functional.cross_entropy(ResizeTo(logits, labels), labels, weight: classWeights, ignore_index: ignoreIndex, reduction: nn.Reduction.None);

    /// <summary>
    /// mmseg DiceLoss (smooth 1, exponent 2): per class, per image
    /// 1 − (2Σ p·t + s) / (Σ p² + Σ t² + s) over labelled pixels, averaged over images and classes.
    /// </summary>
    public static Tensor Dice(Tensor logits, Tensor labels, long ignoreIndex = 255, double smooth = 1.0, double exponent = 2.0)
    {
        using var scope = NewDisposeScope();
        var resized = ResizeTo(logits, labels);
        long numClasses = resized.shape[1];
        var probabilities = resized.softmax(1);
        var valid = labels.ne(ignoreIndex);
        var oneHot = nn.functional.one_hot(labels.where(valid, zeros_like(labels)), numClasses).permute(0, 3, 1, 2).to_type(probabilities.dtype);
        var validMask = valid.unsqueeze(1).to_type(probabilities.dtype);
        var p = (probabilities * validMask).flatten(2);
        var t = (oneHot * validMask).flatten(2);
        var numerator = 2 * (p * t).sum(2) + smooth;
        var denominator = p.pow(exponent).sum(2) + t.pow(exponent).sum(2) + smooth;
        return (1 - numerator / denominator).mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Lovász-softmax (Berman et al. 2018), over the whole batch, averaged over the classes present
    /// in the labels: for each class, the pixel errors |fg − p_c| sorted in decreasing order are
    /// dotted with the gradient of the Lovász extension of the Jaccard loss.
    /// </summary>
    public static Tensor LovaszSoftmax(Tensor logits, Tensor labels, long ignoreIndex = 255)
    {
        using var scope = NewDisposeScope();
        var resized = ResizeTo(logits, labels);
        long numClasses = resized.shape[1];
        var probabilities = resized.softmax(1).permute(0, 2, 3, 1).reshape(-1, numClasses);
        var flat = labels.reshape(-1);
        var keep = flat.ne(ignoreIndex);
        probabilities = probabilities[keep];
        flat = flat[keep];
        var losses = new List<Tensor>();
        for (long c = 0; c < numClasses; c++)
        {
            var foreground = flat.eq(c).to_type(probabilities.dtype);
            if (foreground.sum().item<float>() == 0) continue;
            var errors = (foreground - probabilities[.., c]).abs();
            var (sorted, order) = errors.sort(descending: true);
            losses.Add(sorted.dot(LovaszGradient(foreground[order])));
        }
        var result = losses.Count == 0 ? probabilities.sum() * 0 : stack(losses).mean();
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Gradient of the Lovász extension of the Jaccard loss for foreground indicators sorted by decreasing error.</summary>
    private static Tensor LovaszGradient(Tensor sortedForeground)
    {
        var total = sortedForeground.sum();
        var intersection = total - sortedForeground.cumsum(0);
        var union = total + (1 - sortedForeground).cumsum(0);
        var jaccard = 1 - intersection / union;
        if (jaccard.shape[0] > 1)
            jaccard = cat([jaccard[..1], jaccard[1..] - jaccard[..^1]]);
        return jaccard;
    }

    /// <summary>The logits at the label map's size (bilinear, align_corners false), as every loss reads them.</summary>
    internal static Tensor ResizeTo(Tensor logits, Tensor labels)
    {
        if (labels.dim() != 3) throw new ArgumentException($"labels must be (batch, height, width), got [{string.Join(", ", labels.shape)}]", nameof(labels));
        if (logits.shape[2] == labels.shape[1] && logits.shape[3] == labels.shape[2]) return logits;
        return nn.functional.interpolate(logits, size: [labels.shape[1], labels.shape[2]], mode: InterpolationMode.Bilinear, align_corners: false);
    }
}
