using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's paste_masks_in_image: each M × M mask probability map is stretched over its box by
/// bilinear sampling at the image's pixel centres (grid_sample, align_corners false, zeros outside)
/// and thresholded (≥ threshold) into a full-image binary mask.
/// </summary>
public static class MaskPaster
{
    /// <param name="masks">(N, M, M) probabilities.</param>
    /// <param name="boxes">(N, 4) boxes in the output image's pixels.</param>
    /// <returns>(N, imageHeight, imageWidth) bool masks.</returns>
    public static Tensor Paste(Tensor masks, Tensor boxes, long imageHeight, long imageWidth, double threshold = 0.5)
    {
        if (masks.dim() != 3 || masks.shape[1] != masks.shape[2])
            throw new ArgumentException($"MaskPaster: masks must be (N, M, M), got ({string.Join(", ", masks.shape)}).", nameof(masks));
        if (boxes.dim() != 2 || boxes.shape[1] != 4 || boxes.shape[0] != masks.shape[0])
            throw new ArgumentException(
                $"MaskPaster: boxes must be (N, 4) with N = {masks.shape[0]}, got ({string.Join(", ", boxes.shape)}).", nameof(boxes));
        if (imageHeight < 1 || imageWidth < 1)
            throw new ArgumentException($"MaskPaster: image size must be positive, got {imageHeight}x{imageWidth}.");
        if (!(threshold >= 0 && threshold <= 1))
            throw new ArgumentException($"MaskPaster: threshold must be in [0, 1], got {threshold}.", nameof(threshold));
        using var scope = NewDisposeScope();
        long n = masks.shape[0];
        var result = zeros(new[] { n, imageHeight, imageWidth }, ScalarType.Bool, masks.device);
        // TorchSharp's data<T>().ToArray() throws on an empty tensor: an image without detections.
        if (n == 0) return result.MoveToOuterDisposeScope();
        var probabilities = masks.to_type(ScalarType.Float32);
        // data<T>().ToArray() needs contiguous memory (a view from post-processing may be strided).
        var b = boxes.to_type(ScalarType.Float32).cpu().contiguous();
        var coords = b.data<float>().ToArray();
        for (int i = 0; i < n; i++)
        {
            using var inner = NewDisposeScope();
            float x0 = coords[4 * i], y0 = coords[4 * i + 1], x1 = coords[4 * i + 2], y1 = coords[4 * i + 3];
            // Only the box's neighbourhood can be non-zero: sample just that window (Detectron2's skip_empty).
            long xStart = Math.Max(0, (long)Math.Floor(x0) - 1), yStart = Math.Max(0, (long)Math.Floor(y0) - 1);
            long xEnd = Math.Min(imageWidth, (long)Math.Ceiling(x1) + 1), yEnd = Math.Min(imageHeight, (long)Math.Ceiling(y1) + 1);
            if (xEnd <= xStart || yEnd <= yStart || !(x1 > x0) || !(y1 > y0))
                continue;
            var px = (arange(xStart, xEnd, dtype: ScalarType.Float32, device: masks.device) + 0.5f - x0) / (x1 - x0) * 2 - 1;
            var py = (arange(yStart, yEnd, dtype: ScalarType.Float32, device: masks.device) + 0.5f - y0) / (y1 - y0) * 2 - 1;
            var grid = stack(new[]
            {
                px.unsqueeze(0).expand(py.shape[0], px.shape[0]),
                py.unsqueeze(1).expand(py.shape[0], px.shape[0]),
            }, dim: 2).unsqueeze(0);
            var pasted = nn.functional.grid_sample(probabilities[i].unsqueeze(0).unsqueeze(0), grid, align_corners: false)[0, 0];
            result[i].narrow(0, yStart, yEnd - yStart).narrow(1, xStart, xEnd - xStart).copy_(pasted.ge(threshold));
        }
        return result.MoveToOuterDisposeScope();
    }
}
