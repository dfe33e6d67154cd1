using OpenCvSharp;

namespace Vim.Data.Transforms.Corruptions;

/// <summary>imagecorruptions' weather corruptions (snow, frost, fog, brightness) and spatter (a holdout one), with the package's parameters per severity.</summary>
internal static class WeatherCorruptions
{
    /// <summary>
    /// snow: (mean and std of the flake noise, its zoom, the threshold below which it is cleared, the motion streak's radius
    /// and σ, the weight the image keeps against its brightened grey).
    /// </summary>
    public static readonly (double Mean, double Std, double Zoom, double Threshold, int Radius, double Sigma, double Keep)[] Snow =
    [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ];

    /// <summary>frost: (weight of the image, weight of the frost texture), as the package blends its frost photographs.</summary>
    public static readonly (double Image, double Frost)[] Frost = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)];

    /// <summary>fog: (strength of the plasma haze, its decay per level: smaller is rougher).</summary>
    public static readonly (double Strength, double Decay)[] Fog = [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)];

    /// <summary>brightness: added to the HSV value.</summary>
    public static readonly double[] Brightness = [0.1, 0.2, 0.3, 0.4, 0.5];

    /// <summary>
    /// spatter: (mean and std of the liquid noise, its blur σ, the threshold below which it is dry, the drops' strength
    /// (water) or the mud mask's blur σ, and whether it is mud rather than water).
    /// </summary>
    public static readonly (double Mean, double Std, double Sigma, double Threshold, double Strength, bool Mud)[] Spatter =
    [
        (0.65, 0.3, 4, 0.69, 0.6, false),
        (0.65, 0.3, 3, 0.68, 0.6, false),
        (0.65, 0.3, 2, 0.68, 0.5, false),
        (0.65, 0.3, 1, 0.65, 1.5, true),
        (0.67, 0.4, 1, 0.65, 1.5, true),
    ];

    /// <summary>
    /// Flakes: Gaussian noise zoomed in (clipped zoom), cleared below a threshold, smeared by a motion streak at an angle
    /// in [−135°, −45°) and rounded to 8 bits, added twice (as drawn, and turned by 180°) to the image, which first moves
    /// towards max(x, 1.5·grey + 0.5).
    /// </summary>
    public static byte[] Snowfall(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var p = Snow[severity - 1];
        int height = image.Height, width = image.Width;
        var noise = random.Normals(height * width, p.Mean, p.Std);
        var (_, zoomedHeight) = CorruptionPixels.ZoomedExtent(height, p.Zoom);
        var (_, zoomedWidth) = CorruptionPixels.ZoomedExtent(width, p.Zoom);
        // The whole zoomed layer is thresholded and smeared before it is cut to the image, as the package does.
        var layer = CorruptionPixels.ClippedZoom(noise, height, width, 1, p.Zoom, zoomedHeight, zoomedWidth);
        for (int i = 0; i < layer.Length; i++) layer[i] = layer[i] < p.Threshold ? 0 : Math.Min(layer[i], 1f);
        var streaked = BlurCorruptions.MotionStreak(layer, zoomedHeight, zoomedWidth, 1, p.Radius, p.Sigma, random.Uniform(-135, -45));
        var flakes = new float[height * width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                flakes[y * width + x] = (float)(Math.Round(streaked[y * zoomedWidth + x] * 255.0, MidpointRounding.ToEven) / 255.0);
        var rgb = image.Rgb;
        var result = new byte[rgb.Length];
        for (int pixel = 0; pixel < height * width; pixel++)
        {
            int i = pixel * 3;
            float r = rgb[i] / 255f, g = rgb[i + 1] / 255f, b = rgb[i + 2] / 255f;
            // cv2.COLOR_RGB2GRAY's weights.
            float brightened = (0.299f * r + 0.587f * g + 0.114f * b) * 1.5f + 0.5f;
            // The flakes and their half-turn copy (np.rot90(k=2)).
            float snow = flakes[pixel] + flakes[height * width - 1 - pixel];
            result[i] = CorruptionPixels.UnitToByte(p.Keep * r + (1 - p.Keep) * Math.Max(r, brightened) + snow);
            result[i + 1] = CorruptionPixels.UnitToByte(p.Keep * g + (1 - p.Keep) * Math.Max(g, brightened) + snow);
            result[i + 2] = CorruptionPixels.UnitToByte(p.Keep * b + (1 - p.Keep) * Math.Max(b, brightened) + snow);
        }
        return result;
    }

    /// <summary>
    /// clip(a·x + b·frost, 0, 255) with the package's weights, on <see cref="FrostTexture"/>'s procedural frost: the
    /// package's six frost photographs are not ours to ship, so this corruption's numbers are not comparable with
    /// published COCO-C / ADE20K-C frost numbers (docs/ARCHITECTURE.md, "Robustness benchmark").
    /// </summary>
    public static byte[] Frosted(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var (imageWeight, frostWeight) = Frost[severity - 1];
        var texture = FrostTexture.Generate(image.Height, image.Width, random);
        var rgb = image.Rgb;
        var result = new byte[rgb.Length];
        for (int i = 0; i < rgb.Length; i++)
        {
            double value = imageWeight * rgb[i] + frostWeight * texture[i];
            result[i] = value >= 255 ? (byte)255 : value > 0 ? (byte)value : (byte)0;
        }
        return result;
    }

    /// <summary>
    /// x + s·plasma, scaled by max(x)/(max(x) + s): a haze that lifts dark regions and flattens contrast. The plasma map's
    /// side is the next power of two of the image's largest side; its top-left corner is used, the same map for every channel.
    /// </summary>
    public static byte[] Fogged(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var (strength, decay) = Fog[severity - 1];
        int height = image.Height, width = image.Width;
        // np.max(shape) includes the channel count, which only matters for images smaller than 3 pixels.
        int mapSize = PlasmaFractal.NextPowerOfTwo(Math.Max(Math.Max(height, width), 3));
        var plasma = PlasmaFractal.Generate(mapSize, decay, random);
        var rgb = image.Rgb;
        double max = rgb.Length == 0 ? 0 : rgb.Max() / 255.0;
        double scale = max / (max + strength);
        var result = new byte[rgb.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double haze = strength * plasma[y * mapSize + x];
                int i = (y * width + x) * 3;
                for (int c = 0; c < 3; c++) result[i + c] = CorruptionPixels.UnitToByte((rgb[i + c] / 255.0 + haze) * scale);
            }
        return result;
    }

    /// <summary>The HSV value raised by the severity's amount and clipped to 1; hue and saturation kept.</summary>
    public static byte[] Brighter(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double amount = Brightness[severity - 1];
        return CorruptionPixels.ChangeHsv(image.Rgb, (s, v) => (s, Math.Clamp(v + amount, 0, 1)));
    }

    /// <summary>
    /// Liquid noise blurred and thresholded into drops. Water (severities 1–3): the drops' Canny edges turned into a
    /// distance map (truncated at 20, blurred, equalised, embossed, blurred), times the liquid, normalised to its maximum
    /// and scaled, adds pale turquoise (175, 238, 238). Mud (4–5): the drop mask blurred, kept where it reaches 0.8, covers
    /// the image with mud brown (63, 42, 20).
    /// </summary>
    public static byte[] Spattered(CorruptionImage image, int severity, CorruptionRandom random)
    {
        var p = Spatter[severity - 1];
        int height = image.Height, width = image.Width, pixels = height * width;
        var liquid = CorruptionPixels.Gaussian(random.Normals(pixels, p.Mean, p.Std), height, width, 1, p.Sigma);
        for (int i = 0; i < pixels; i++) if (liquid[i] < p.Threshold) liquid[i] = 0;
        var rgb = image.Rgb;
        var result = new byte[rgb.Length];
        if (!p.Mud)
        {
            var relief = WaterRelief(liquid, height, width);
            var drops = new float[pixels];
            for (int i = 0; i < pixels; i++) drops[i] = liquid[i] * relief[i];
            float max = drops.Max();
            double[] colour = [175 / 255.0, 238 / 255.0, 238 / 255.0];
            for (int i = 0; i < pixels; i++)
            {
                // The package divides by the maximum over the image; a dry image (maximum 0) has no drops to add.
                double drop = max > 0 ? drops[i] / max * p.Strength : 0;
                for (int c = 0; c < 3; c++) result[i * 3 + c] = CorruptionPixels.UnitToByte(rgb[i * 3 + c] / 255.0 + drop * colour[c]);
            }
            return result;
        }
        var wet = new float[pixels];
        for (int i = 0; i < pixels; i++) wet[i] = liquid[i] > p.Threshold ? 1 : 0;
        var mud = CorruptionPixels.Gaussian(wet, height, width, 1, p.Strength);
        double[] brown = [63 / 255.0, 42 / 255.0, 20 / 255.0];
        for (int i = 0; i < pixels; i++)
        {
            double cover = mud[i] < 0.8f ? 0 : mud[i];
            for (int c = 0; c < 3; c++) result[i * 3 + c] = CorruptionPixels.UnitToByte(rgb[i * 3 + c] / 255.0 * (1 - cover) + brown[c] * cover);
        }
        return result;
    }

    /// <summary>The relief of the water drops' edges, spatter's OpenCV chain on the 8-bit liquid layer.</summary>
    private static float[] WaterRelief(float[] liquid, int height, int width)
    {
        var bytes = new byte[liquid.Length];
        // (liquid * 255).astype(np.uint8): the blurred liquid stays well inside [0, 1] (a mean of 0.65 blurred by σ ≥ 2).
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)Math.Clamp(liquid[i] * 255f, 0f, 255f);
        using var layer = Mat.FromPixelData(height, width, MatType.CV_8UC1, bytes);
        using var edges = new Mat();
        Cv2.Canny(layer, edges, 50, 150);
        using var notEdges = new Mat();
        Cv2.BitwiseNot(edges, notEdges);
        using var distance = new Mat();
        Cv2.DistanceTransform(notEdges, distance, DistanceTypes.L2, DistanceTransformMasks.Mask5);
        Cv2.Threshold(distance, distance, 20, 20, ThresholdTypes.Trunc);
        using var smoothed = new Mat();
        Cv2.Blur(distance, smoothed, new Size(3, 3));
        // .astype(np.uint8) truncates, where ConvertTo would round.
        var truncated = CorruptionPixels.Copy(smoothed).Select(v => (byte)v).ToArray();
        using var smoothedBytes = Mat.FromPixelData(height, width, MatType.CV_8UC1, truncated);
        using var equalised = new Mat();
        Cv2.EqualizeHist(smoothedBytes, equalised);
        using var emboss = Mat.FromPixelData(3, 3, MatType.CV_32FC1, new float[] { -2, -1, 0, -1, 1, 1, 0, 1, 2 });
        using var embossed = new Mat();
        Cv2.Filter2D(equalised, embossed, MatType.CV_8U, emboss);
        using var relief = new Mat();
        Cv2.Blur(embossed, relief, new Size(3, 3));
        using var reliefFloat = new Mat();
        relief.ConvertTo(reliefFloat, MatType.CV_32F);
        return CorruptionPixels.Copy(reliefFloat);
    }
}
