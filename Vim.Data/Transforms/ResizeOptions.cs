namespace Vim.Data.Transforms;

/// <summary>
/// mmseg/mmdet Resize. Each scale is [long edge, short edge] (mmcv's img_scale (w, h) with keep_ratio).
/// With several scales one is picked at random per sample (multi-scale training, <see cref="MultiscaleMode.Value"/>), or with
/// <see cref="MultiscaleMode.Range"/> each edge is drawn between the two scales'; with <see cref="RatioRange"/> the single scale
/// is multiplied by a uniform ratio (ADE20k: (2048, 512), 0.5–2.0).
/// </summary>
public sealed record ResizeOptions
{
    public List<int[]> Scales { get; init; } = [[2048, 512]];

    /// <summary>[min, max] ratio applied to the single scale; null for none.</summary>
    public double[]? RatioRange { get; init; }

    /// <summary>How several scales give one: pick one of them (value) or draw each edge between two of them (range).</summary>
    public MultiscaleMode MultiscaleMode { get; init; } = MultiscaleMode.Value;

    /// <summary>Keep the aspect ratio (fit inside the scale); false resizes to exactly width = scale[0], height = scale[1].</summary>
    public bool KeepRatio { get; init; } = true;

    /// <summary>mmcv's OpenCV resampling by default; detectron2's ResizeShortestEdge resamples with Pillow.</summary>
    public ImageResampling Resampling { get; init; } = ImageResampling.OpenCvBilinear;
}

/// <summary>mmdet 2.x's Resize multiscale_mode: how a resize with several scales draws the one it applies.</summary>
public enum MultiscaleMode
{
    /// <summary>One of the scales, uniformly (mmcv's RandomChoiceResize).</summary>
    Value,

    /// <summary>
    /// Exactly two scales bound the range: the first number drawn uniformly (integers, both ends included) between the two
    /// scales' first numbers, then the second number between their second numbers (mmcv 2.x's RandomResize with a list of scales).
    /// </summary>
    Range,
}
