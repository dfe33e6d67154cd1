namespace Vim.Data.Transforms;

/// <summary>
/// mmseg/mmdet Resize. Each scale is [long edge, short edge] (mmcv's img_scale (w, h) with keep_ratio).
/// With several scales one is picked at random per sample (multi-scale training); with
/// <see cref="RatioRange"/> the single scale is multiplied by a uniform ratio (ADE20k: (2048, 512), 0.5–2.0).
/// </summary>
public sealed record ResizeOptions
{
    public List<int[]> Scales { get; init; } = [[2048, 512]];

    /// <summary>[min, max] ratio applied to the single scale; null for none.</summary>
    public double[]? RatioRange { get; init; }

    /// <summary>Keep the aspect ratio (fit inside the scale); false resizes to exactly width = scale[0], height = scale[1].</summary>
    public bool KeepRatio { get; init; } = true;

    /// <summary>mmcv's OpenCV resampling by default; detectron2's ResizeShortestEdge resamples with Pillow.</summary>
    public ImageResampling Resampling { get; init; } = ImageResampling.OpenCvBilinear;
}
