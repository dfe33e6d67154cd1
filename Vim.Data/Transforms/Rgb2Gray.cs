using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// mmseg's RGB2Gray: each pixel's w·(r, g, b) in every channel. mmseg keeps the float; our images are bytes, so the sum is
/// rounded to the nearest byte (clamped to 0..255 for weights that sum above 1 or below 0).
/// </summary>
public sealed class Rgb2Gray : ISampleTransform
{
    private readonly double[] _weights;

    public Rgb2Gray(Rgb2GrayOptions options)
    {
        if (options.OutChannels is { } channels && channels != 3)
            throw new ArgumentException($"rgb2gray out_channels {channels}: images stay 3-channel here (the backbones take RGB); leave it out or set 3.");
        if (options.Weights.Length != 3 || !options.Weights.All(double.IsFinite))
            throw new ArgumentException($"rgb2gray weights [{string.Join(", ", options.Weights)}] must be three numbers, for R, G and B.");
        _weights = options.Weights;
    }

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "RGB2Gray");
        var image = sample.Image;
        double wr = _weights[0], wg = _weights[1], wb = _weights[2];
        for (int i = 0; i < image.Length; i += 3)
        {
            double grey = image[i] * wr + image[i + 1] * wg + image[i + 2] * wb;
            image[i] = image[i + 1] = image[i + 2] = (byte)Math.Clamp(Math.Round(grey, MidpointRounding.ToEven), 0, 255);
        }
    }
}
