namespace Vim.Data.Transforms;

/// <summary>detectron2 ResizeScale (large-scale jitter): fit the image into target × uniform(min, max).</summary>
public sealed record ResizeScaleOptions
{
    public double MinScale { get; init; } = 0.1;
    public double MaxScale { get; init; } = 2.0;
    public int TargetHeight { get; init; } = 1024;
    public int TargetWidth { get; init; } = 1024;

    /// <summary>detectron2's ResizeTransform resamples uint8 images with Pillow.</summary>
    public ImageResampling Resampling { get; init; } = ImageResampling.PillowBilinear;
}
