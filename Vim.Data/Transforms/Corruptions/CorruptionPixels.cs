using OpenCvSharp;

namespace Vim.Data.Transforms.Corruptions;

/// <summary>
/// The arithmetic the corruptions share, on HWC pixel arrays: the package's conversions to and from [0, 1], its
/// Gaussian filter (scipy's gaussian_filter, which skimage's gaussian calls), its zoom (scipy's zoom, order 1), and
/// the colour space it changes brightness and saturation in (skimage's HSV). OpenCV does the convolutions; no Mat
/// outlives a call.
/// </summary>
internal static class CorruptionPixels
{
    /// <summary><c>np.array(x) / 255.</c> as float32 HWC.</summary>
    public static float[] ToUnit(byte[] rgb)
    {
        var unit = new float[rgb.Length];
        for (int i = 0; i < rgb.Length; i++) unit[i] = rgb[i] / 255f;
        return unit;
    }

    /// <summary>
    /// <c>np.uint8(np.clip(x, 0, 1) * 255)</c>: the package clips to [0, 1], scales, and imagecorruptions' <c>corrupt</c>
    /// casts to uint8, which truncates (a pixel at 0.999·255 is 254). NaN, which no corruption produces, would become 0.
    /// </summary>
    public static byte UnitToByte(double value) => value >= 1 ? (byte)255 : value > 0 ? (byte)(value * 255.0) : (byte)0;

    /// <summary><see cref="UnitToByte(double)"/> of every element.</summary>
    public static byte[] UnitToBytes(float[] unit)
    {
        var bytes = new byte[unit.Length];
        for (int i = 0; i < unit.Length; i++) bytes[i] = UnitToByte(unit[i]);
        return bytes;
    }

    /// <summary><c>np.uint8(np.clip(x, 0, 255))</c> of values on the 0–255 scale (motion blur, frost), truncating as above.</summary>
    public static byte[] ScaleToBytes(float[] values)
    {
        var bytes = new byte[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            bytes[i] = v >= 255 ? (byte)255 : v > 0 ? (byte)v : (byte)0;
        }
        return bytes;
    }

    /// <summary>A float32 Mat over <paramref name="data"/> (HWC, <paramref name="channels"/> interleaved), pinned while it lives.</summary>
    public static Mat Wrap(float[] data, int height, int width, int channels) =>
        Mat.FromPixelData(height, width, MatType.CV_32FC(channels), data);

    /// <summary>A float32 array copied out of a continuous float Mat.</summary>
    public static float[] Copy(Mat mat)
    {
        using var continuous = mat.IsContinuous() ? null : mat.Clone();
        var source = continuous ?? mat;
        var data = new float[source.Total() * source.Channels()];
        System.Runtime.InteropServices.Marshal.Copy(source.Data, data, 0, data.Length);
        return data;
    }

    /// <summary>
    /// scipy.ndimage.gaussian_filter along the two image axes (skimage's <c>gaussian</c> with the channel axis left alone):
    /// the kernel exp(−x²/2σ²) normalised over x = −r…r, r = int(truncate·σ + 0.5), applied separably with the given
    /// border (scipy's 'nearest' is <see cref="BorderTypes.Replicate"/>, 'reflect' is <see cref="BorderTypes.Reflect"/>).
    /// </summary>
    public static float[] Gaussian(float[] data, int height, int width, int channels, double sigmaY, double sigmaX, double truncate, BorderTypes border)
    {
        var result = new float[data.Length];
        using var source = Wrap(data, height, width, channels);
        using var target = Wrap(result, height, width, channels);
        using var kernelX = GaussianKernel(sigmaX, truncate);
        using var kernelY = GaussianKernel(sigmaY, truncate);
        Cv2.SepFilter2D(source, target, MatType.CV_32F, kernelX, kernelY, new Point(-1, -1), 0, border);
        return result;
    }

    /// <summary>skimage's default gaussian (mode 'nearest', truncate 4) with one σ for both axes.</summary>
    public static float[] Gaussian(float[] data, int height, int width, int channels, double sigma) =>
        Gaussian(data, height, width, channels, sigma, sigma, 4.0, BorderTypes.Replicate);

    private static Mat GaussianKernel(double sigma, double truncate)
    {
        int radius = (int)(truncate * sigma + 0.5);
        var weights = new float[2 * radius + 1];
        double total = 0;
        var raw = new double[weights.Length];
        for (int i = -radius; i <= radius; i++) total += raw[i + radius] = Math.Exp(-0.5 * i * i / (sigma * sigma));
        for (int i = 0; i < raw.Length; i++) weights[i] = (float)(raw[i] / total);
        var kernel = new Mat(weights.Length, 1, MatType.CV_32FC1);
        kernel.SetArray(weights);
        return kernel;
    }

    /// <summary>
    /// imagecorruptions' <c>clipped_zoom</c>: the centre ⌈H/z⌉ × ⌈W/z⌉ of the image (top-left corner at ((H − ⌈H/z⌉) // 2, …))
    /// zoomed by scipy's <c>zoom(order=1)</c> to round(⌈H/z⌉·z) × round(⌈W/z⌉·z) (Python's round, half to even), of which
    /// the top-left <paramref name="rows"/> × <paramref name="columns"/> are returned. scipy's zoom samples output index j
    /// at input coordinate j·(in − 1)/(out − 1), linearly; a + f·(b − a) keeps a constant image exactly constant.
    /// </summary>
    public static float[] ClippedZoom(float[] image, int height, int width, int channels, double zoom, int rows, int columns)
    {
        var (cropHeight, zoomedHeight) = ZoomedExtent(height, zoom);
        var (cropWidth, zoomedWidth) = ZoomedExtent(width, zoom);
        if (rows > zoomedHeight || columns > zoomedWidth)
            throw new ArgumentException($"clipped zoom of {width}x{height} by {zoom} gives {zoomedWidth}x{zoomedHeight}, fewer than {columns}x{rows}");
        var (rowFirst, rowFraction) = LinearTaps((height - cropHeight) / 2, cropHeight, zoomedHeight, rows);
        var (columnFirst, columnFraction) = LinearTaps((width - cropWidth) / 2, cropWidth, zoomedWidth, columns);
        // Rows first: only the rows the output reads, each interpolated along the full width.
        int stride = width * channels;
        var vertical = new float[rows * stride];
        for (int y = 0; y < rows; y++)
        {
            int top = rowFirst[y] * stride, bottom = Math.Min(rowFirst[y] + 1, height - 1) * stride;
            float f = rowFraction[y];
            for (int i = 0; i < stride; i++)
            {
                float a = image[top + i];
                vertical[y * stride + i] = a + f * (image[bottom + i] - a);
            }
        }
        var result = new float[rows * columns * channels];
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < columns; x++)
            {
                int left = y * stride + columnFirst[x] * channels, right = y * stride + Math.Min(columnFirst[x] + 1, width - 1) * channels;
                float f = columnFraction[x];
                for (int c = 0; c < channels; c++)
                {
                    float a = vertical[left + c];
                    result[(y * columns + x) * channels + c] = a + f * (vertical[right + c] - a);
                }
            }
        return result;
    }

    /// <summary>The crop ⌈size/z⌉ and the size scipy's zoom makes of it, round(crop·z) with Python's rounding.</summary>
    public static (int Crop, int Zoomed) ZoomedExtent(int size, double zoom)
    {
        int crop = (int)Math.Ceiling(size / zoom);
        return (crop, (int)Math.Round(crop * zoom, MidpointRounding.ToEven));
    }

    private static (int[] First, float[] Fraction) LinearTaps(int offset, int cropSize, int zoomedSize, int count)
    {
        var first = new int[count];
        var fraction = new float[count];
        double step = zoomedSize > 1 ? (double)(cropSize - 1) / (zoomedSize - 1) : 0;
        for (int j = 0; j < count; j++)
        {
            double position = j * step;
            int index = Math.Min((int)Math.Floor(position), cropSize - 1);
            first[j] = offset + index;
            fraction[j] = (float)(position - index);
        }
        return (first, fraction);
    }

    /// <summary>numpy's <c>arange(start, stop, step)</c>: ⌈(stop − start)/step⌉ values start + i·step, computed as numpy does.</summary>
    public static double[] Arange(double start, double stop, double step)
    {
        int count = Math.Max(0, (int)Math.Ceiling((stop - start) / step));
        return Enumerable.Range(0, count).Select(i => start + i * step).ToArray();
    }

    /// <summary>skimage's rgb2hsv of one pixel in [0, 1]: hue in [0, 1), saturation (max − min)/max, value max.</summary>
    public static (double H, double S, double V) ToHsv(double r, double g, double b)
    {
        double v = Math.Max(r, Math.Max(g, b));
        double delta = v - Math.Min(r, Math.Min(g, b));
        double s = v == 0 ? 0 : delta / v;
        if (delta == 0) return (0, s, v);
        // skimage assigns red's, then green's, then blue's formula where each channel is the maximum: the last wins ties.
        double h = b == v ? 4 + (r - g) / delta : g == v ? 2 + (b - r) / delta : (g - b) / delta;
        h /= 6;
        h -= Math.Floor(h);
        return (h, s, v);
    }

    /// <summary>skimage's hsv2rgb of one pixel: the sector ⌊6h⌋ and the fraction within it.</summary>
    public static (double R, double G, double B) FromHsv(double h, double s, double v)
    {
        double scaled = h * 6;
        int sector = (int)Math.Floor(scaled);
        double f = scaled - sector;
        double p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
        return (((sector % 6) + 6) % 6) switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
    }

    /// <summary>Every pixel through HSV: <paramref name="change"/> maps (s, v) to the new (s, v); hue is kept. The result is bytes as the package casts them.</summary>
    public static byte[] ChangeHsv(byte[] rgb, Func<double, double, (double S, double V)> change)
    {
        var result = new byte[rgb.Length];
        for (int i = 0; i < rgb.Length; i += 3)
        {
            var (h, s, v) = ToHsv(rgb[i] / 255.0, rgb[i + 1] / 255.0, rgb[i + 2] / 255.0);
            var (newS, newV) = change(s, v);
            var (r, g, b) = FromHsv(h, newS, newV);
            result[i] = UnitToByte(r);
            result[i + 1] = UnitToByte(g);
            result[i + 2] = UnitToByte(b);
        }
        return result;
    }
}
