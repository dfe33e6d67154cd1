using TorchSharp;
using Vim.Data.Masks;
using Vim.Detection.Ops;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Mask R-CNN training targets, size × size per RoI. A ground truth drawn from polygons has them rasterised inside the
/// RoI box (Detectron2's PolygonMasks.crop_and_resize, what the ViTDet recipe trains on); one from RLE has its
/// full-image bitmask sampled inside the box with aligned RoIAlign (scale 1, adaptive sampling) and thresholded at 0.5
/// (Detectron2's BitMasks.crop_and_resize).
/// </summary>
public static class MaskTargets
{
    /// <summary>Targets of one image's RoIs: from the outlines where the RoI's ground truth has them, else from its bitmask.</summary>
    /// <param name="outlines">Per ground-truth instance its polygon outlines in image pixels, null for an RLE instance; or null for none.</param>
    public static Tensor ForRois(Tensor gtMasks, IReadOnlyList<IReadOnlyList<double[]>?>? outlines, Tensor boxes, Tensor gtIndex, long size)
    {
        using var scope = NewDisposeScope();
        long rois = boxes.shape[0];
        if (outlines is null || rois == 0 || outlines.All(o => o is null)) return CropAndResize(gtMasks, boxes, gtIndex, size).MoveToOuterDisposeScope();
        var owners = gtIndex.to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        var corners = boxes.to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        int cells = (int)(size * size);
        var drawn = new byte[rois * cells];
        var fromOutlines = new bool[rois];
        for (int r = 0; r < rois; r++)
        {
            if (outlines[(int)owners[r]] is not { } owned) continue;
            fromOutlines[r] = true;
            RasterizeInBox(owned, corners[4 * r], corners[4 * r + 1], corners[4 * r + 2], corners[4 * r + 3], (int)size).CopyTo(drawn, r * cells);
        }
        var polygonTargets = tensor(drawn, [rois, size, size]).to(gtMasks.device).to_type(ScalarType.Bool);
        if (fromOutlines.All(f => f)) return polygonTargets.MoveToOuterDisposeScope();
        var usePolygons = tensor(fromOutlines).to(gtMasks.device).view(rois, 1, 1);
        return where(usePolygons, polygonTargets, CropAndResize(gtMasks, boxes, gtIndex, size)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Detectron2's rasterize_polygons_within_box: the outlines moved to the box's corner and stretched so the box spans
    /// size × size (a side under 0.1 px counts as 0.1), rasterised as pycocotools does (union of the outlines), row-major 0/1.
    /// </summary>
    public static byte[] RasterizeInBox(IReadOnlyList<double[]> outlines, double x0, double y0, double x1, double y1, int size)
    {
        double stretchX = size / Math.Max(x1 - x0, 0.1), stretchY = size / Math.Max(y1 - y0, 0.1);
        var moved = outlines.Select(xy =>
        {
            var inBox = new double[xy.Length];
            for (int i = 0; i + 1 < xy.Length; i += 2)
            {
                inBox[i] = (xy[i] - x0) * stretchX;
                inBox[i + 1] = (xy[i + 1] - y0) * stretchY;
            }
            return inBox;
        }).ToList();
        return PolygonRasterizer.FromPolygons(moved, size, size).Decode();
    }

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
