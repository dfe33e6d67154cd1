using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// mmseg's AdjustGamma: a 256-entry lookup table 255 · (i / 255)^(1 / gamma), computed in doubles and truncated to a byte
/// (numpy's astype('uint8'), not rounded), applied to every channel (mmcv.lut_transform).
/// </summary>
public sealed class AdjustGamma : ISampleTransform
{
    private readonly byte[] _table = new byte[256];

    public AdjustGamma(AdjustGammaOptions options)
    {
        if (!(options.Gamma > 0) || double.IsInfinity(options.Gamma)) throw new ArgumentException($"adjust_gamma gamma {options.Gamma} must be a positive number.");
        double inverse = 1.0 / options.Gamma;
        for (int i = 0; i < 256; i++) _table[i] = (byte)(Math.Pow(i / 255.0, inverse) * 255);
    }

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "AdjustGamma");
        var image = sample.Image;
        for (int i = 0; i < image.Length; i++) image[i] = _table[image[i]];
    }
}
