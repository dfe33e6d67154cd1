using TorchSharp;
using Vim.Detection.Ops;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Mask R-CNN training targets from full-image bitmasks (Detectron2's BitMasks.crop_and_resize):
/// each RoI's ground-truth mask is sampled inside the RoI box onto a size × size grid with aligned
/// RoIAlign (scale 1, adaptive sampling) and thresholded at 0.5.
/// </summary>
public static class MaskTargets
{
    /// <param name="gtMasks">(G, H, W) bool, uint8 or float masks of one image.</param>
    /// <param name="boxes">(R, 4) RoI boxes in image pixels.</param>
    /// <param name="gtIndex">(R) int64: which ground-truth mask belongs to each RoI.</param>
    /// <returns>(R, size, size) bool targets.</returns>
    public static Tensor CropAndResize(Tensor gtMasks, Tensor boxes, Tensor gtIndex, long size)
    {
        if (gtMasks.dim() != 3)
            throw new ArgumentException($"MaskTargets: gt masks must be (G, H, W), got ({string.Join(", ", gtMasks.shape)}).", nameof(gtMasks));
        if (boxes.dim() != 2 || boxes.shape[1] != 4 || gtIndex.dim() != 1 || gtIndex.shape[0] != boxes.shape[0])
            throw new ArgumentException(
                $"MaskTargets: boxes must be (R, 4) and gt indices (R), got ({string.Join(", ", boxes.shape)}) and ({string.Join(", ", gtIndex.shape)}).");
        if (size < 1)
            throw new ArgumentException($"MaskTargets: size must be positive, got {size}.", nameof(size));
        using var scope = NewDisposeScope();
        if (boxes.shape[0] == 0)
            return zeros(new[] { 0L, size, size }, ScalarType.Bool, gtMasks.device).MoveToOuterDisposeScope();
        var masks = gtMasks.to_type(ScalarType.Float32).unsqueeze(1);
        // The ground-truth index doubles as RoIAlign's batch index: no per-RoI copy of the mask.
        var rois = cat(new[] { gtIndex.to_type(ScalarType.Float32).unsqueeze(1), boxes.to_type(ScalarType.Float32) }, 1)
            .to(masks.device);
        var sampled = RoiAlign.Apply(masks, rois, (size, size), 1.0, 0, aligned: true).squeeze(1);
        return sampled.ge(0.5).MoveToOuterDisposeScope();
    }
}
