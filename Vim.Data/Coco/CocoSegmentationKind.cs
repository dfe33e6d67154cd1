namespace Vim.Data.Coco;

/// <summary>The three ways a COCO json file stores a mask.</summary>
public enum CocoSegmentationKind
{
    /// <summary>List of flat [x1, y1, x2, y2, …] outlines, rasterised at the image size.</summary>
    Polygons,
    /// <summary>{"size": [h, w], "counts": "compressed string"}.</summary>
    CompressedRle,
    /// <summary>{"size": [h, w], "counts": [run lengths]} (used for crowd regions).</summary>
    UncompressedRle,
}
