namespace Vim.Data.Transforms;

/// <summary>mmseg PhotoMetricDistortion defaults.</summary>
public sealed record PhotoMetricDistortionOptions
{
    public int BrightnessDelta { get; init; } = 32;
    public double[] ContrastRange { get; init; } = [0.5, 1.5];
    public double[] SaturationRange { get; init; } = [0.5, 1.5];

    /// <summary>In OpenCV hue units (0..179, i.e. 2° each).</summary>
    public int HueDelta { get; init; } = 18;
}
