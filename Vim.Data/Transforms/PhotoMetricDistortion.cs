using OpenCvSharp;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// mmseg's PhotoMetricDistortion: each of brightness, contrast, saturation and hue is applied with
/// probability ½; contrast runs either first or last (a coin decides), saturation and hue are changed in
/// HSV. Every step rounds back to 8-bit, as mmseg does.
/// </summary>
public sealed class PhotoMetricDistortion : ISampleTransform
{
    private readonly PhotoMetricDistortionOptions _options;

    public PhotoMetricDistortion(PhotoMetricDistortionOptions options)
    {
        if (options.BrightnessDelta < 0 || options.HueDelta < 0) throw new ArgumentException("PhotoMetricDistortion deltas must be non-negative.");
        CheckRange(options.ContrastRange, "contrast_range");
        CheckRange(options.SaturationRange, "saturation_range");
        _options = options;
    }

    private static void CheckRange(double[] r, string name)
    {
        if (r.Length != 2 || r[0] < 0 || r[1] < r[0]) throw new ArgumentException($"PhotoMetricDistortion {name} [{string.Join(", ", r)}] must be [lower, upper] with 0 <= lower <= upper.");
    }

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "PhotoMetricDistortion");
        var img = sample.Image;
        if (random.Next(2) == 1) Convert(img, 1, RandomDraws.Uniform(random, -_options.BrightnessDelta, _options.BrightnessDelta));
        bool contrastFirst = random.Next(2) == 1;
        if (contrastFirst) Contrast(img, random);
        // Coin then factor, saturation before hue: the order mmseg draws its random numbers in.
        if (random.Next(2) == 1)
        {
            double saturation = RandomDraws.Uniform(random, _options.SaturationRange[0], _options.SaturationRange[1]);
            ApplyHsv(sample, hsv => ScaleChannel(hsv, 1, saturation));
        }
        if (random.Next(2) == 1)
        {
            int hueShift = random.Next(-_options.HueDelta, _options.HueDelta);
            ApplyHsv(sample, hsv => ShiftHue(hsv, hueShift));
        }
        if (!contrastFirst) Contrast(img, random);
    }

    private void Contrast(byte[] img, Random random)
    {
        if (random.Next(2) == 1) Convert(img, RandomDraws.Uniform(random, _options.ContrastRange[0], _options.ContrastRange[1]), 0);
    }

    /// <summary>x·alpha + beta, clipped to 0..255, truncated to 8-bit (numpy astype).</summary>
    private static void Convert(byte[] img, double alpha, double beta)
    {
        float a = (float)alpha, b = (float)beta;
        for (int i = 0; i < img.Length; i++) img[i] = (byte)Math.Clamp(img[i] * a + b, 0f, 255f);
    }

    private static void ApplyHsv(DataSample sample, Action<byte[]> change)
    {
        int n = sample.Height * sample.Width * 3;
        var hsv = new byte[n];
        ImageOps.WithMat(sample.Image, sample.Height, sample.Width, rgb =>
        {
            ImageOps.WithMat(hsv, sample.Height, sample.Width, h => Cv2.CvtColor(rgb, h, ColorConversionCodes.RGB2HSV));
            change(hsv);
            ImageOps.WithMat(hsv, sample.Height, sample.Width, h => Cv2.CvtColor(h, rgb, ColorConversionCodes.HSV2RGB));
        });
    }

    private static void ScaleChannel(byte[] hsv, int channel, double alpha)
    {
        float a = (float)alpha;
        for (int i = channel; i < hsv.Length; i += 3) hsv[i] = (byte)Math.Clamp(hsv[i] * a, 0f, 255f);
    }

    /// <summary>OpenCV's 8-bit hue runs 0..179, so the shift wraps modulo 180.</summary>
    private static void ShiftHue(byte[] hsv, int shift)
    {
        for (int i = 0; i < hsv.Length; i += 3) hsv[i] = (byte)(((hsv[i] + shift) % 180 + 180) % 180);
    }
}
