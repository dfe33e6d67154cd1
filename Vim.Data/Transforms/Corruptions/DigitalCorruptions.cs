using System.Runtime.InteropServices;
using OpenCvSharp;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms.Corruptions;

/// <summary>imagecorruptions' digital corruptions and saturate (a holdout one), with the package's parameters per severity.</summary>
internal static class DigitalCorruptions
{
    /// <summary>contrast: the factor differences from each channel's mean are scaled by.</summary>
    public static readonly double[] Contrast = [0.4, 0.3, 0.2, 0.1, 0.05];

    /// <summary>elastic_transform: α, the displacement field's gain (the field's σ is 1% of each side, its raw amplitude 0.5% of the height).</summary>
    public static readonly double[] ElasticAlpha = [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12];

    /// <summary>pixelate: the fraction of each side the image is shrunk to before it is blown up again.</summary>
    public static readonly double[] Pixelate = [0.6, 0.5, 0.4, 0.3, 0.25];

    /// <summary>jpeg_compression: the JPEG quality.</summary>
    public static readonly int[] JpegQuality = [25, 18, 15, 10, 7];

    /// <summary>saturate: (factor, offset) of the HSV saturation, s·a + b clipped to [0, 1].</summary>
    public static readonly (double Factor, double Offset)[] Saturate = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)];

    /// <summary>(x − m)·c + m per channel, m the channel's mean over the image.</summary>
    public static byte[] LowerContrast(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double factor = Contrast[severity - 1];
        var rgb = image.Rgb;
        var means = new double[3];
        for (int i = 0; i < rgb.Length; i++) means[i % 3] += rgb[i] / 255.0;
        int pixels = Math.Max(1, rgb.Length / 3);
        for (int c = 0; c < 3; c++) means[c] /= pixels;
        var result = new byte[rgb.Length];
        for (int i = 0; i < rgb.Length; i++) result[i] = CorruptionPixels.UnitToByte((rgb[i] / 255.0 - means[i % 3]) * factor + means[i % 3]);
        return result;
    }

    /// <summary>The HSV saturation scaled and offset, clipped to [0, 1]; hue and value kept.</summary>
    public static byte[] Saturated(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var (factor, offset) = Saturate[severity - 1];
        return CorruptionPixels.ChangeHsv(image.Rgb, (s, v) => (Math.Clamp(s * factor + offset, 0, 1), v));
    }

    /// <summary>
    /// Pillow's BOX resize to (int(W·c), int(H·c)), then its NEAREST resize back: blocks holding the mean of the pixels
    /// whose centres they cover.
    /// </summary>
    public static byte[] Pixelated(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double fraction = Pixelate[severity - 1];
        int height = image.Height, width = image.Width;
        // Pillow refuses a zero size; an image of a pixel or two keeps one block.
        int smallHeight = Math.Max(1, (int)(height * fraction)), smallWidth = Math.Max(1, (int)(width * fraction));
        var small = ImageOps.ResizePillowBox(image.Rgb, height, width, 3, smallHeight, smallWidth);
        var blocks = ImageOps.ResizePillowNearest(MemoryMarshal.Cast<byte, RgbPixel>(small).ToArray(), smallHeight, smallWidth, height, width);
        return MemoryMarshal.AsBytes(blocks.AsSpan()).ToArray();
    }

    /// <summary>One RGB pixel as a unit, so the single-channel nearest resize moves whole pixels.</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private readonly record struct RgbPixel(byte R, byte G, byte B);

    /// <summary>A JPEG encode at the severity's quality and a decode (OpenCV's libjpeg, 4:2:0 chroma as Pillow's default).</summary>
    public static byte[] Jpeg(CorruptionImage image, int severity, CorruptionRandom random)
    {
        int quality = JpegQuality[severity - 1];
        using var bgr = ImageEncoder.ToBgr(image.Rgb, image.Height, image.Width);
        Cv2.ImEncode(".jpg", bgr, out byte[] encoded, new ImageEncodingParam(ImwriteFlags.JpegQuality, quality));
        return ImageDecoder.DecodeRgb(encoded, $"jpeg_compression at quality {quality}").Rgb;
    }

    /// <summary>
    /// The package's elastic_transform: two fields of uniform noise in ±0.005·H, Gaussian-blurred with σ = 1% of each side
    /// (scipy's reflect border, truncate 3) and multiplied by α, displace each pixel's sampling point; the image is read there
    /// bilinearly with reflection at the border (map_coordinates(order=1, mode='reflect')).
    /// </summary>
    public static byte[] Elastic(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double alpha = ElasticAlpha[severity - 1];
        int height = image.Height, width = image.Width, pixels = height * width;
        double sigmaY = height * 0.01, sigmaX = width * 0.01, maxShift = height * 0.005;
        float[] Field()
        {
            var noise = new float[pixels];
            for (int i = 0; i < pixels; i++) noise[i] = (float)random.Uniform(-maxShift, maxShift);
            var blurred = CorruptionPixels.Gaussian(noise, height, width, 1, sigmaY, sigmaX, 3.0, BorderTypes.Reflect);
            for (int i = 0; i < pixels; i++) blurred[i] *= (float)alpha;
            return blurred;
        }
        var dx = Field();
        var dy = Field();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                dx[y * width + x] += x;
                dy[y * width + x] += y;
            }
        var unit = CorruptionPixels.ToUnit(image.Rgb);
        var result = new float[unit.Length];
        using (var source = CorruptionPixels.Wrap(unit, height, width, 3))
        using (var target = CorruptionPixels.Wrap(result, height, width, 3))
        using (var mapX = CorruptionPixels.Wrap(dx, height, width, 1))
        using (var mapY = CorruptionPixels.Wrap(dy, height, width, 1))
            Cv2.Remap(source, target, mapX, mapY, InterpolationFlags.Linear, BorderTypes.Reflect);
        return CorruptionPixels.UnitToBytes(result);
    }
}
