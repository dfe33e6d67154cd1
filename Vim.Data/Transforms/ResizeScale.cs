using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>Large-scale-jitter resize (the ViTDet/LSJ detection recipe), followed by <see cref="FixedSizeCrop"/>.</summary>
public sealed class ResizeScale : ISampleTransform
{
    private readonly ResizeScaleOptions _options;

    public ResizeScaleOptions Options => _options;

    public ResizeScale(ResizeScaleOptions options)
    {
        if (options.MinScale <= 0 || options.MaxScale < options.MinScale)
            throw new ArgumentException($"ResizeScale needs 0 < min_scale <= max_scale, got {options.MinScale}..{options.MaxScale}.");
        if (options.TargetHeight <= 0 || options.TargetWidth <= 0)
            throw new ArgumentException($"ResizeScale target {options.TargetWidth}x{options.TargetHeight} must be positive.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        double scale = _options.MinScale + random.NextDouble() * (_options.MaxScale - _options.MinScale);
        double factor = Math.Min(_options.TargetHeight * scale / sample.Height, _options.TargetWidth * scale / sample.Width);
        int newH = Math.Max(1, (int)Math.Round(sample.Height * factor, MidpointRounding.ToEven));
        int newW = Math.Max(1, (int)Math.Round(sample.Width * factor, MidpointRounding.ToEven));
        SampleGeometry.ResizeTo(sample, newH, newW, _options.Resampling);
    }
}
