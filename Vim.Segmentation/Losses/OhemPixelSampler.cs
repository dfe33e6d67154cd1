using System.Globalization;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Segmentation.Losses;

/// <summary>
/// mmseg's OHEMPixelSampler (model.seg_head.sampler: {type: ohem}): online hard example mining over the labelled pixels
/// of a batch of B images, as weights (1 kept, 0 not) for the decode head's cross-entropy. With K = min_kept × B:
/// <list type="bullet">
/// <item>with <see cref="Threshold"/>: the n labelled pixels' softmax probabilities of their true class, sorted ascending,
/// give the floor p[min(K, n − 1)]; a pixel is kept when its probability is below max(threshold, floor). So at least
/// about K pixels are kept where there are more, fewer where probabilities tie at the floor (the comparison is strict),
/// and with n ≤ K every pixel but those at the largest probability (all of them if the threshold exceeds it).</item>
/// <item>without: the K labelled pixels of largest loss (every one with n ≤ K); of pixels tied at the cut, the first in
/// (image, row, column) order, where mmseg leaves it to an unstable sort.</item>
/// </list>
/// The selection is made without gradient. The auxiliary head is not sampled, as in mmseg. <see cref="CrossEntropy"/> is the
/// decode head's sampled loss, each pixel's cross-entropy computed once for the ranking and the loss alike.
/// </summary>
public sealed class OhemPixelSampler
{
    private readonly long _ignoreIndex;

    public OhemPixelSampler(double? threshold, int minKept, long ignoreIndex)
    {
        if (minKept <= 1)
            throw new VimException($"model.seg_head.sampler.min_kept must be more than 1 (the pixels kept per image at least; mmseg asserts it), got {minKept}");
        if (threshold is { } t && !(t >= 0 && t <= 1))
            throw new VimException($"model.seg_head.sampler.thresh must be a probability in [0, 1] or null, got {t.ToString(CultureInfo.InvariantCulture)}");
        Threshold = threshold;
        MinKept = minKept;
        _ignoreIndex = ignoreIndex;
    }

    /// <summary>Keep pixels whose true-class probability is below this (raised to the floor above); null: rank by loss.</summary>
    public double? Threshold { get; }

    public int MinKept { get; }

    /// <summary>
    /// The sampler model.seg_head.sampler asks for, or null for none. It weights cross-entropy only (mmseg's DiceLoss and
    /// LovaszLoss take no pixel weights), so the decode losses must include it.
    /// </summary>
    public static OhemPixelSampler? FromConfig(SegmentationHeadConfig heads, IReadOnlyList<WeightedLoss> decodeLosses)
    {
        if (heads.Sampler is not { } sampler) return null;
        if (!decodeLosses.Any(loss => loss.Kind == SegmentationLossKind.CrossEntropy))
            throw new VimException("model.seg_head.sampler weights the pixels of the decode head's cross_entropy, the one per-pixel loss (dice and lovasz " +
                $"take no pixel weights, as in mmseg), but the decode losses are {string.Join(", ", decodeLosses.Select(loss => ConfigBinder.KeyOf(loss.Kind)))}; " +
                "add cross_entropy to model.seg_head.losses or set sampler: null");
        return new OhemPixelSampler(sampler.Thresh, sampler.MinKept, heads.IgnoreIndex);
    }

    /// <summary>
    /// The sampled cross-entropy (mmseg's CrossEntropyLoss with this sampler's seg_weight): each pixel's loss
    /// (<see cref="SegmentationLosses.CrossEntropyPerPixel"/>, with gradient) computed once; without a threshold its detached
    /// values times <paramref name="hardnessScale"/> (the loss's weight, as mmseg ranks by the weighted losses) choose the
    /// pixels, and the same values, weighted 1 or 0, make the loss (<see cref="SegmentationLosses.Reduce"/>). mmseg computes
    /// the loss a second time for the ranking; the values, the pixels chosen and the gradient are the same.
    /// </summary>
    public Tensor CrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, double hardnessScale, bool averageOverNonIgnored)
    {
        using var scope = NewDisposeScope();
        var perPixel = SegmentationLosses.CrossEntropyPerPixel(logits, labels, _ignoreIndex, classWeights);
        var kept = Weights(logits, labels, () => hardnessScale * perPixel.detach());
        return SegmentationLosses.Reduce(perPixel, labels, _ignoreIndex, averageOverNonIgnored, kept).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The weight of each pixel (B, H, W), float32: 1 where kept, 0 elsewhere and at ignored pixels.
    /// <paramref name="pixelLosses"/> gives each pixel's loss (B, H, W) at the labels' size; it is called only without a
    /// threshold (mmseg sums there the decode losses computed per pixel).
    /// </summary>
    public Tensor Weights(Tensor logits, Tensor labels, Func<Tensor> pixelLosses)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var valid = labels.ne(_ignoreIndex);
        long batchKept = (long)MinKept * labels.shape[0];
        Tensor kept;
        if (Threshold is { } threshold)
        {
            // mmseg samples after forcing the logits to float32 (force_fp32), so under autocast it ranks float32 probabilities too.
            var probabilities = Autocast.WidenHalf(SegmentationLosses.ResizeTo(logits, labels)).softmax(1);
            var truth = probabilities.gather(1, labels.where(valid, zeros_like(labels)).unsqueeze(1)).squeeze(1);
            var labelled = truth.masked_select(valid);
            long count = labelled.shape[0];
            if (count > 0)
            {
                var ascending = labelled.sort().Values;
                threshold = Math.Max(threshold, ascending[Math.Min(batchKept, count - 1)].item<float>());
            }
            kept = truth.lt(threshold).logical_and(valid).to_type(ScalarType.Float32);
        }
        else
        {
            var losses = pixelLosses().detach().flatten();
            var labelledIndex = valid.flatten().nonzero().squeeze(1);
            var hardestFirst = losses.index_select(0, labelledIndex).sort(dim: 0, descending: true, stable: true).Indices;
            var chosen = labelledIndex.index_select(0, hardestFirst.narrow(0, 0, Math.Min(batchKept, hardestFirst.shape[0])));
            kept = zeros(losses.shape[0], dtype: ScalarType.Float32, device: labels.device).index_fill_(0, chosen, 1).reshape(labels.shape);
        }
        return kept.MoveToOuterDisposeScope();
    }
}
