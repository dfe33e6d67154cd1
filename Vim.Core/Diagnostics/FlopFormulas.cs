using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Diagnostics;

/// <summary>
/// How many FLOPs an operation costs, from its shapes. One fused multiply-add is one FLOP (fvcore's and mmcv's
/// convention, which the DeiT and ViTDet papers report: a (m×k)·(k×n) product is m·k·n). The standard layers follow
/// fvcore's handle table (fvcore/nn/jit_handles.py): convolutions and linear layers count their products (no bias),
/// norms a rough per-element estimate, bilinear resizing one product per tap; activations, element-wise arithmetic,
/// softmax, max pooling, NMS and other post-processing count 0. Our own operators (selective scan, attention, RoIAlign,
/// RMSNorm) are defined next to them, with where each count comes from.
/// </summary>
public static class FlopFormulas
{
    /// <summary>A linear layer on <paramref name="inputElements"/> inputs (any leading shape × in features): one product
    /// per input element and output feature (fvcore's aten::linear; the bias is not counted).</summary>
    public static long Linear(long inputElements, long outFeatures) => inputElements * outFeatures;

    /// <summary>
    /// A convolution: batch × |weight| × output positions (fvcore's conv handle), where |weight| = out · in/groups · kernel
    /// already divides by the groups. A transposed convolution multiplies every input position by the whole kernel,
    /// so it counts input positions instead. The bias is not counted.
    /// </summary>
    public static long Convolution(ReadOnlySpan<long> inputShape, ReadOnlySpan<long> weightShape, ReadOnlySpan<long> outputShape, bool transposed)
    {
        var positions = (transposed ? inputShape : outputShape)[2..];
        return inputShape[0] * Product(weightShape) * Product(positions);
    }

    /// <summary>LayerNorm, GroupNorm, InstanceNorm and BatchNorm in training: fvcore's estimate of 5 per element with
    /// an affine transform (mean, centre, variance, scale, affine), 4 without.</summary>
    public static long Norm(long elements, bool affine) => elements * (affine ? 5 : 4);

    /// <summary>BatchNorm in eval mode: a per-channel scale (and shift, when affine) of every element (fvcore's
    /// batchnorm handle: 2 per element with an affine transform, 1 without).</summary>
    public static long BatchNormInference(long elements, bool affine) => elements * (affine ? 2 : 1);

    /// <summary>
    /// RMSNorm (Mamba's, no bias): fvcore's norm estimate without the centring, i.e. 4 per element with a weight
    /// (square, mean, scale by the inverse root, weight), 3 without. fvcore itself has no handle for it.
    /// </summary>
    public static long RmsNorm(long elements, bool weight) => elements * (weight ? 4 : 3);

    /// <summary>Resizing: one product per source tap of every output element: nearest 1 (fvcore: 1), linear 2,
    /// bilinear 4 (fvcore: 4), trilinear 8, bicubic 16.</summary>
    public static long Interpolate(long outputElements, UpsampleMode mode) => outputElements * mode switch
    {
        UpsampleMode.Nearest => 1,
        UpsampleMode.Linear => 2,
        UpsampleMode.Bilinear => 4,
        UpsampleMode.Trilinear => 8,
        UpsampleMode.Bicubic => 16,
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "no FLOP count for this resize mode"),
    };

    /// <inheritdoc cref="Interpolate(long, UpsampleMode)"/>
    public static long Interpolate(long outputElements, InterpolationMode mode) => Interpolate(outputElements, mode switch
    {
        InterpolationMode.Nearest => UpsampleMode.Nearest,
        InterpolationMode.Linear => UpsampleMode.Linear,
        InterpolationMode.Bilinear => UpsampleMode.Bilinear,
        InterpolationMode.Trilinear => UpsampleMode.Trilinear,
        InterpolationMode.Bicubic => UpsampleMode.Bicubic,
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "no FLOP count for this resize mode"),
    });

    /// <summary>Adaptive average pooling: one addition per input element (fvcore's adaptive_avg_pool2d handle).</summary>
    public static long AdaptiveAveragePool(long inputElements) => inputElements;

    /// <summary>
    /// The selective scan over (batch, channels D, length L) with N states, as VMamba's flops_selective_scan_fn counts it
    /// for fvcore (and mamba_ssm issue #110 derives it): 9·B·L·D·N for the recurrence (discretising Δ·A and Δ·B·u, the
    /// state update and the C read-out), plus B·D·L for the D skip term and B·D·L for the SiLU(z) gate when present.
    /// The Δ bias and softplus are element-wise and not counted.
    /// </summary>
    public static long SelectiveScan(long batch, long channels, long length, long states, bool withSkip, bool withGate) =>
        9 * batch * length * channels * states + (withSkip ? batch * channels * length : 0) + (withGate ? batch * channels * length : 0);

    /// <summary>
    /// Scaled dot-product attention per head: Q·Kᵀ (Lq·Lk·d products) and the weights times V (Lq·Lk·dv), i.e.
    /// 2·B·H·L²·d for self-attention, what fvcore counts for the two matmuls of explicit attention; scaling and softmax
    /// are element-wise and not counted.
    /// </summary>
    public static long Attention(long batch, long heads, long queries, long keys, long headDim, long valueDim) =>
        batch * heads * queries * keys * (headDim + valueDim);

    /// <summary>
    /// RoIAlign: every sample point is a bilinear interpolation of 4 neighbours (4 products, fvcore's grid_sampler
    /// estimate), taken for each channel; <paramref name="samplePoints"/> is the number of sample points over all
    /// RoIs and output cells (pooled cells × grid_h × grid_w per RoI, the grid adaptive with sampling ratio 0).
    /// fvcore has no handle for torchvision's roi_align and counts it as 0.
    /// </summary>
    public static long RoiAlign(long channels, long samplePoints) => 4 * channels * samplePoints;

    /// <summary>
    /// The count of a standard TorchSharp layer from the shapes of one call, with the operator name it is reported
    /// under; null for a layer that is not counted here (activations, dropout, max pooling, identity, and our own
    /// modules, which report their operators themselves).
    /// </summary>
    public static (string Operator, long Flops)? StandardLayer(nn.Module layer, Tensor input, Tensor output) => layer switch
    {
        Linear linear => ("linear", Linear(input.numel(), linear.out_features)),
        Convolution conv => ("conv", Convolution(input.shape, conv.weight!.shape, output.shape, conv.transposed)),
        BatchNorm batchNorm when batchNorm.training => ("norm", Norm(input.numel(), batchNorm.affine)),
        BatchNorm batchNorm => ("norm", BatchNormInference(input.numel(), batchNorm.affine)),
        InstanceNorm instanceNorm => ("norm", Norm(input.numel(), instanceNorm.affine)),
        LayerNorm layerNorm => ("norm", Norm(input.numel(), layerNorm.elementwise_affine)),
        GroupNorm groupNorm => ("norm", Norm(input.numel(), groupNorm.affine)),
        AdaptiveAvgPool1d or AdaptiveAvgPool2d or AdaptiveAvgPool3d => ("pool", AdaptiveAveragePool(input.numel())),
        Upsample upsample => ("upsample", Interpolate(output.numel(), upsample.mode)),
        _ => null,
    };

    private static long Product(ReadOnlySpan<long> values)
    {
        long product = 1;
        foreach (var value in values) product *= value;
        return product;
    }
}
