using OpenCvSharp;

namespace Vim.Data.Transforms.Corruptions;

/// <summary>imagecorruptions' blur corruptions, with the package's parameters per severity.</summary>
internal static class BlurCorruptions
{
    /// <summary>gaussian_blur (holdout): σ in pixels.</summary>
    public static readonly double[] GaussianSigma = [1, 2, 3, 4, 6];

    /// <summary>glass_blur: (σ of the two Gaussian blurs, largest pixel displacement, shuffling passes).</summary>
    public static readonly (double Sigma, int MaxDelta, int Iterations)[] GlassParameters = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)];

    /// <summary>defocus_blur: (disk radius, σ of the anti-aliasing blur of the disk).</summary>
    public static readonly (int Radius, double AliasBlur)[] DefocusParameters = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)];

    /// <summary>motion_blur: (kernel radius: the streak is 2r + 1 pixels long, σ of its Gaussian weights); the angle is uniform in [−45°, 45°).</summary>
    public static readonly (int Radius, double Sigma)[] MotionParameters = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)];

    /// <summary>zoom_blur: the zoom factors averaged with the image, numpy's arange(1, stop, step).</summary>
    public static readonly (double Stop, double Step)[] ZoomParameters = [(1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)];

    public static byte[] Gaussian(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var unit = CorruptionPixels.ToUnit(image.Rgb);
        return CorruptionPixels.UnitToBytes(CorruptionPixels.Gaussian(unit, image.Height, image.Width, 3, GaussianSigma[severity - 1]));
    }

    /// <summary>
    /// Blur, shuffle pixels locally, blur again. The shuffle is the package's own sequential process, pass by pass from the
    /// bottom-right corner: pixel (h, w), for h from H − d down to d + 1 and w from W − d down to d + 1, swaps with
    /// (h + dy, w + dx), dx and dy uniform in [−d, d) (numpy's randint leaves out +d). A swap moves a pixel that a later
    /// swap may move again, so the order is part of the distribution; done in place on the bytes it costs one pass over
    /// the image per iteration (the package needs numba for the same loop).
    /// </summary>
    public static byte[] Glass(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var (sigma, delta, iterations) = GlassParameters[severity - 1];
        int height = image.Height, width = image.Width;
        // np.uint8(gaussian(x / 255.) * 255): truncated, not clipped (a blur of values in [0, 1] stays there).
        var pixels = CorruptionPixels.UnitToBytes(CorruptionPixels.Gaussian(CorruptionPixels.ToUnit(image.Rgb), height, width, 3, sigma));
        Shuffle(pixels, height, width, delta, iterations, random);
        return CorruptionPixels.UnitToBytes(CorruptionPixels.Gaussian(CorruptionPixels.ToUnit(pixels), height, width, 3, sigma));
    }

    /// <summary>The local shuffle of <see cref="Glass"/>, in place on RGB pixels.</summary>
    internal static void Shuffle(byte[] pixels, int height, int width, int delta, int iterations, CorruptionRandom random)
    {
        for (int pass = 0; pass < iterations; pass++)
            for (int h = height - delta; h > delta; h--)
                for (int w = width - delta; w > delta; w--)
                {
                    int dx = random.Integer(-delta, delta), dy = random.Integer(-delta, delta);
                    int a = (h * width + w) * 3, b = ((h + dy) * width + w + dx) * 3;
                    (pixels[a], pixels[b]) = (pixels[b], pixels[a]);
                    (pixels[a + 1], pixels[b + 1]) = (pixels[b + 1], pixels[a + 1]);
                    (pixels[a + 2], pixels[b + 2]) = (pixels[b + 2], pixels[a + 2]);
                }
    }

    public static byte[] Defocus(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var (radius, aliasBlur) = DefocusParameters[severity - 1];
        var unit = CorruptionPixels.ToUnit(image.Rgb);
        var result = new float[unit.Length];
        using (var source = CorruptionPixels.Wrap(unit, image.Height, image.Width, 3))
        using (var target = CorruptionPixels.Wrap(result, image.Height, image.Width, 3))
        using (var kernel = Disk(radius, aliasBlur))
            // The package filters each channel with cv2.filter2D's default border (reflect-101); one call does all three.
            Cv2.Filter2D(source, target, MatType.CV_32F, kernel, new Point(-1, -1), 0, BorderTypes.Reflect101);
        return CorruptionPixels.UnitToBytes(result);
    }

    /// <summary>
    /// The package's <c>disk</c>: on the grid −8…8 (radius ≤ 8) or −r…r, the pixels within the radius, normalised to sum 1,
    /// then anti-aliased by cv2.GaussianBlur (3×3, or 5×5 beyond radius 8; its default reflect-101 border).
    /// </summary>
    internal static Mat Disk(int radius, double aliasBlur)
    {
        int half = radius <= 8 ? 8 : radius, blurSize = radius <= 8 ? 3 : 5;
        int size = 2 * half + 1;
        var weights = new float[size * size];
        for (int y = -half; y <= half; y++)
            for (int x = -half; x <= half; x++)
                if (x * x + y * y <= radius * radius) weights[(y + half) * size + x + half] = 1;
        float total = weights.Sum();
        for (int i = 0; i < weights.Length; i++) weights[i] /= total;
        using var aliased = CorruptionPixels.Wrap(weights, size, size, 1);
        var kernel = new Mat();
        Cv2.GaussianBlur(aliased, kernel, new Size(blurSize, blurSize), aliasBlur, 0, BorderTypes.Reflect101);
        return kernel;
    }

    public static byte[] Motion(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var (radius, sigma) = MotionParameters[severity - 1];
        double angle = random.Uniform(-45, 45);
        var values = image.Rgb.Select(v => (float)v).ToArray();
        return CorruptionPixels.ScaleToBytes(MotionStreak(values, image.Height, image.Width, 3, radius, sigma, angle));
    }

    /// <summary>The Gaussian weights of a motion streak of 2r + 1 taps: exp(−i²/2σ²) for i = 0…2r, normalised to sum 1.</summary>
    public static double[] MotionKernel(int radius, double sigma)
    {
        var weights = Enumerable.Range(0, 2 * radius + 1).Select(i => Math.Exp(-(double)i * i / (2 * sigma * sigma)) / (Math.Sqrt(2 * Math.PI) * sigma)).ToArray();
        double total = weights.Sum();
        return weights.Select(w => w / total).ToArray();
    }

    /// <summary>
    /// The package's <c>_motion_blur</c>: the sum over taps i of weight i times the image shifted by
    /// (−⌈i·sin θ − ½⌉, −⌈i·cos θ − ½⌉) rows and columns, the edges repeated into the space a shift opens (its <c>shift</c>);
    /// the taps stop at the first shift as large as the image. Each shift is a window into the image padded once by
    /// edge replication, so a tap costs one scaled add.
    /// </summary>
    public static float[] MotionStreak(float[] data, int height, int width, int channels, int radius, double sigma, double angleDegrees)
    {
        var weights = MotionKernel(radius, sigma);
        int taps = weights.Length;
        double theta = angleDegrees * Math.PI / 180;
        double pointY = taps * Math.Sin(theta), pointX = taps * Math.Cos(theta), hypot = Math.Sqrt(pointY * pointY + pointX * pointX);
        var shifts = new List<(int Dy, int Dx, double Weight)>();
        for (int i = 0; i < taps; i++)
        {
            int dy = -(int)Math.Ceiling(i * pointY / hypot - 0.5), dx = -(int)Math.Ceiling(i * pointX / hypot - 0.5);
            if (Math.Abs(dy) >= height || Math.Abs(dx) >= width) break;
            shifts.Add((dy, dx, weights[i]));
        }
        int pad = shifts.Count == 0 ? 0 : shifts.Max(s => Math.Max(Math.Abs(s.Dy), Math.Abs(s.Dx)));
        var result = new float[data.Length];
        using var source = CorruptionPixels.Wrap(data, height, width, channels);
        using var padded = new Mat();
        Cv2.CopyMakeBorder(source, padded, pad, pad, pad, pad, BorderTypes.Replicate);
        using var sum = CorruptionPixels.Wrap(result, height, width, channels);
        foreach (var (dy, dx, weight) in shifts)
        {
            // shifted(y, x) = image(y − dy, x − dx), clamped at the edges.
            using var window = new Mat(padded, new Rect(pad - dx, pad - dy, width, height));
            Cv2.ScaleAdd(window, weight, sum, sum);
        }
        return result;
    }

    public static byte[] Zoom(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var (stop, step) = ZoomParameters[severity - 1];
        var factors = CorruptionPixels.Arange(1, stop, step);
        int height = image.Height, width = image.Width;
        var unit = CorruptionPixels.ToUnit(image.Rgb);
        var sum = new float[unit.Length];
        foreach (double factor in factors)
        {
            var layer = CorruptionPixels.ClippedZoom(unit, height, width, 3, factor, height, width);
            for (int i = 0; i < sum.Length; i++) sum[i] += layer[i];
        }
        var result = new float[unit.Length];
        for (int i = 0; i < result.Length; i++) result[i] = (unit[i] + sum[i]) / (factors.Length + 1);
        return CorruptionPixels.UnitToBytes(result);
    }
}
