using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// Crops a random window of the configured size (one uniform draw scales both offsets, as in detectron2);
/// boxes are clipped and instances that vanish are removed.
/// </summary>
public sealed class FixedSizeCrop : ISampleTransform
{
    private readonly FixedSizeCropOptions _options;

    public FixedSizeCrop(FixedSizeCropOptions options)
    {
        if (options.Height <= 0 || options.Width <= 0) throw new ArgumentException($"FixedSizeCrop size {options.Width}x{options.Height} must be positive.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        int maxY = Math.Max(sample.Height - _options.Height, 0), maxX = Math.Max(sample.Width - _options.Width, 0);
        double u = random.NextDouble();
        int y0 = (int)Math.Round(maxY * u, MidpointRounding.ToEven), x0 = (int)Math.Round(maxX * u, MidpointRounding.ToEven);
        SampleGeometry.CropTo(sample, y0, x0, Math.Min(_options.Height, sample.Height), Math.Min(_options.Width, sample.Width));
        if (_options.Pad)
            new Pad(new PadOptions { Size = [_options.Height, _options.Width], PadValue = _options.PadValue, SegPadValue = _options.SegPadValue })
                .Apply(sample, random);
    }
}
