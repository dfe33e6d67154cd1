namespace Vim.Data.Transforms;

/// <summary>
/// How a resize resamples: as the library of the recipe being reproduced does, since the two differ where it matters
/// (shrinking, and where a resized mask's pixels land).
/// </summary>
public enum ImageResampling
{
    /// <summary>
    /// mmcv.imresize (the mmseg and mmdet recipes): OpenCV INTER_LINEAR for the image, which reads the 2×2 nearest source
    /// pixels also when shrinking, and INTER_NEAREST for masks and label maps (source index ⌊j·scale⌋).
    /// </summary>
    OpenCvBilinear,

    /// <summary>
    /// detectron2's ResizeTransform (the ViTDet recipe): Pillow BILINEAR for the image, a triangle filter widened by the
    /// shrink factor (it antialiases), and for masks and label maps Pillow's NEAREST, the source pixel under each output
    /// pixel's centre (Pillow's running sum ½·s + j·s, truncated), where the polygons detectron2 transforms exactly would put a mask.
    /// </summary>
    PillowBilinear,
}
