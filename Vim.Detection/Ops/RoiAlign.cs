using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using TorchSharp;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Ops;

/// <summary>
/// RoIAlign (torchvision roi_align; with <c>aligned</c> = Detectron2's ROIAlignV2): bilinear
/// average pooling of box regions into a fixed grid. Native CPU (float32, float64) and CUDA
/// (float32) kernels; differentiable with respect to the features. bfloat16 / float16 features
/// (autocast) are pooled in float32 and the result returned in their dtype.
/// </summary>
public static class RoiAlign
{
    /// <param name="features">(N, C, H, W) float32, float64, bfloat16 or float16 feature map.</param>
    /// <param name="rois">(K, 5) rows (batch index, x1, y1, x2, y2) in input-image coordinates, of any floating dtype
    /// (used in float32 for half features, else in the features' dtype).</param>
    /// <param name="outputSize">(height, width) of the pooled grid.</param>
    /// <param name="spatialScale">Feature-map size over image size (1/stride).</param>
    /// <param name="samplingRatio">Samples per bin side; 0 = adaptive ceil(roi size / output size).</param>
    /// <param name="aligned">Shift by −0.5 pixel so box corners fall on pixel corners (ROIAlignV2).</param>
    /// <returns>(K, C, outputH, outputW) in the features' dtype and device.</returns>
    public static Tensor Apply(Tensor features, Tensor rois, (long Height, long Width) outputSize, double spatialScale,
        int samplingRatio, bool aligned)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(rois);
        if (features.dim() != 4)
            throw new ArgumentException($"RoiAlign: features must be (N, C, H, W), got ({Shape(features)}).", nameof(features));
        if (features.dtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"RoiAlign: features must be float32, float64, bfloat16 or float16, got {features.dtype}.", nameof(features));
        // Half types (what autocast hands over) are pooled by the float32 kernel, as torchvision's autocast
        // registration of roi_align does: it casts features and rois to float32 and the result back to the
        // features' dtype, so the next layer sees the dtype it was given. The cast is an autograd op: the
        // float32 gradient flows back cast to the features' dtype.
        var computeType = Autocast.IsHalf(features.dtype) ? ScalarType.Float32 : features.dtype;
        if (features.device.type == DeviceType.CUDA && computeType != ScalarType.Float32)
            throw new ArgumentException("RoiAlign: the CUDA kernel supports float32 (and half, pooled in float32) features only.", nameof(features));
        if (rois.dim() != 2 || rois.shape[1] != 5)
            throw new ArgumentException($"RoiAlign: rois must be (K, 5) rows (batch index, x1, y1, x2, y2), got ({Shape(rois)}).", nameof(rois));
        if (!SameDevice(rois, features))
            throw new ArgumentException($"RoiAlign: rois are on {rois.device} but features on {features.device}.", nameof(rois));
        if (outputSize.Height < 1 || outputSize.Width < 1)
            throw new ArgumentException($"RoiAlign: output size must be positive, got {outputSize.Height}x{outputSize.Width}.", nameof(outputSize));
        if (!(spatialScale > 0) || double.IsInfinity(spatialScale))
            throw new ArgumentException($"RoiAlign: spatial scale must be a positive finite number, got {spatialScale}.", nameof(spatialScale));
        if (samplingRatio < 0)
            throw new ArgumentException($"RoiAlign: sampling ratio must be >= 0 (0 = adaptive), got {samplingRatio}.", nameof(samplingRatio));

        using var scope = NewDisposeScope();
        var f = features.to_type(computeType).contiguous();
        // Box coordinates are never rounded to a half type: bf16 keeps 8 significant bits (steps of 4 pixels at 1000).
        var r = rois.to_type(computeType).contiguous();
        if (r.shape[0] > 0)
        {
            var batchIndex = r[.., 0];
            double min = batchIndex.min().ToDouble(), max = batchIndex.max().ToDouble();
            if (min < 0 || max >= features.shape[0] || batchIndex.ne(batchIndex.floor()).any().item<bool>())
                throw new ArgumentException(
                    $"RoiAlign: roi batch indices must be integers in [0, {features.shape[0]}), got values in [{min}, {max}].", nameof(rois));
        }
        var output = RoiAlignFunction.apply(f, r, outputSize.Height, outputSize.Width, spatialScale, samplingRatio, aligned);
        if (FlopCounter.IsActive)
            FlopCounter.Add("roi_align", FlopFormulas.RoiAlign(features.shape[1], SamplePoints(r, outputSize, spatialScale, samplingRatio, aligned)));
        return output.to_type(features.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// How many points the kernel interpolates over all RoIs and output cells: a grid of sampling ratio² points per
    /// cell, or with ratio 0 the adaptive ceil(RoI size / output size) per side of each RoI (torchvision's
    /// roi_bin_grid), malformed RoIs taken as 1×1 unless aligned and empty grids counting none.
    /// </summary>
    private static long SamplePoints(Tensor rois, (long Height, long Width) outputSize, double spatialScale, int samplingRatio, bool aligned)
    {
        long cells = outputSize.Height * outputSize.Width;
        if (samplingRatio > 0) return rois.shape[0] * cells * samplingRatio * samplingRatio;
        if (rois.shape[0] == 0) return 0;
        using var scope = NewDisposeScope();
        var width = (rois[.., 3] - rois[.., 1]) * spatialScale;
        var height = (rois[.., 4] - rois[.., 2]) * spatialScale;
        if (!aligned)
        {
            width = width.clamp_min(1);
            height = height.clamp_min(1);
        }
        var gridWidth = (width / outputSize.Width).ceil().clamp_min(0);
        var gridHeight = (height / outputSize.Height).ceil().clamp_min(0);
        return (long)(gridWidth * gridHeight).to_type(ScalarType.Float64).sum().item<double>() * cells;
    }

    /// <summary>(K, 5) rois from per-image boxes: each row is (image index, x1, y1, x2, y2).</summary>
    public static Tensor BoxesToRois(IReadOnlyList<Boxes> boxesPerImage)
    {
        if (boxesPerImage.Count == 0)
            throw new ArgumentException("RoiAlign.BoxesToRois: at least one image is required.", nameof(boxesPerImage));
        using var scope = NewDisposeScope();
        var parts = boxesPerImage.Select((b, i) =>
            cat(new[] { full(new[] { b.Count, 1L }, (double)i, b.Tensor.dtype, b.Tensor.device), b.Tensor }, 1)).ToArray();
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    private static string Shape(Tensor t) => string.Join(", ", t.shape);

    /// <summary>Device equality by value (Device is a class compared by reference).</summary>
    internal static bool SameDevice(Tensor a, Tensor b) =>
        a.device.type == b.device.type && a.device.index == b.device.index;
}
