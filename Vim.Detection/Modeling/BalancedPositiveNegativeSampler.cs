using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Picks at most <see cref="BatchSizePerImage"/> labelled elements per image with up to
/// <see cref="PositiveFraction"/> positives, filling the rest with negatives (Detectron2's
/// subsample_labels). Labels: −1 ignore, <c>backgroundLabel</c> negative, anything else positive.
/// The choice is uniform at random from the supplied generator, so a seeded generator repeats it.
/// </summary>
public sealed class BalancedPositiveNegativeSampler
{
    public long BatchSizePerImage { get; }
    public double PositiveFraction { get; }

    public BalancedPositiveNegativeSampler(long batchSizePerImage, double positiveFraction)
    {
        if (batchSizePerImage <= 0)
            throw new ArgumentException($"Sampler: batch size per image must be positive, got {batchSizePerImage}.");
        if (!(positiveFraction >= 0 && positiveFraction <= 1))
            throw new ArgumentException($"Sampler: positive fraction must be in [0, 1], got {positiveFraction}.");
        BatchSizePerImage = batchSizePerImage;
        PositiveFraction = positiveFraction;
    }

    /// <summary>Returns the int64 indices of the sampled positives and negatives of a (N) label vector.</summary>
    public (Tensor Positive, Tensor Negative) Sample(Tensor labels, long backgroundLabel, Generator? generator = null)
    {
        if (labels.dim() != 1)
            throw new ArgumentException($"Sampler: labels must be 1-D, got ({string.Join(", ", labels.shape)}).");
        using var scope = NewDisposeScope();
        var positive = labels.ne(-1).logical_and(labels.ne(backgroundLabel)).nonzero().view(-1);
        var negative = labels.eq(backgroundLabel).nonzero().view(-1);
        long wantPositive = (long)(BatchSizePerImage * PositiveFraction);
        long numPositive = Math.Min(positive.shape[0], wantPositive);
        long numNegative = Math.Min(negative.shape[0], BatchSizePerImage - numPositive);
        var pickedPositive = positive[Permutation(positive.shape[0], generator, labels.device)[..(int)numPositive]];
        var pickedNegative = negative[Permutation(negative.shape[0], generator, labels.device)[..(int)numNegative]];
        return (pickedPositive.MoveToOuterDisposeScope(), pickedNegative.MoveToOuterDisposeScope());
    }

    private static Tensor Permutation(long n, Generator? generator, Device device) =>
        // The permutation is drawn on the CPU so one CPU generator serves any device.
        randperm(n, generator: generator, dtype: ScalarType.Int64).to(device);
}
