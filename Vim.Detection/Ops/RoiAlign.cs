using TorchSharp;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Ops;

/// <summary>
/// RoIAlign (torchvision roi_align; with <c>aligned</c> = Detectron2's ROIAlignV2): bilinear
/// average pooling of box regions into a fixed grid. Native CPU (float32, float64) and CUDA
/// (float32) kernels; differentiable with respect to the features.
/// </summary>
public static class RoiAlign
{
    /// <param name="features">(N, C, H, W) float32 or float64 feature map.</param>
    /// <param name="rois">(K, 5) rows (batch index, x1, y1, x2, y2) in input-image coordinates.</param>
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
        if (features.dtype != ScalarType.Float32 && features.dtype != ScalarType.Float64)
            throw new ArgumentException($"RoiAlign: features must be float32 or float64, got {features.dtype}.", nameof(features));
        if (features.device.type == DeviceType.CUDA && features.dtype != ScalarType.Float32)
            throw new ArgumentException("RoiAlign: the CUDA kernel supports float32 features only.", nameof(features));
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
        var f = features.is_contiguous() ? features : features.contiguous();
        var r = rois.to_type(features.dtype).contiguous();
        if (r.shape[0] > 0)
        {
            var batchIndex = r[.., 0];
            double min = batchIndex.min().ToDouble(), max = batchIndex.max().ToDouble();
            if (min < 0 || max >= features.shape[0] || batchIndex.ne(batchIndex.floor()).any().item<bool>())
                throw new ArgumentException(
                    $"RoiAlign: roi batch indices must be integers in [0, {features.shape[0]}), got values in [{min}, {max}].", nameof(rois));
        }
        var output = RoiAlignFunction.apply(f, r, outputSize.Height, outputSize.Width, spatialScale, samplingRatio, aligned);
        return output.MoveToOuterDisposeScope();
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
