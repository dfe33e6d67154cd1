using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Datasets;
using Vim.Data.Transforms;
using Vim.Data.Transforms.Corruptions;

namespace Vim.Tests.Data;

/// <summary>
/// The benchmark corruptions (imagecorruptions' definitions) against expectations worked from those definitions on tiny
/// images: HSV and mean formulas by hand, block means, OpenCV's own JPEG round trip, binomial and normal statistics,
/// the motion streak's Gaussian taps, invariants (constant images, ranges, permutations), determinism per seed and
/// monotonicity in severity.
/// </summary>
public class ImageCorruptionTests
{
    private static CorruptionImage Constant(int height, int width, byte value)
    {
        var rgb = new byte[height * width * 3];
        Array.Fill(rgb, value);
        return new CorruptionImage(rgb, height, width);
    }

    /// <summary>A textured image: smooth gradients with a few hard edges, every channel different.</summary>
    private static CorruptionImage Textured(int height, int width)
    {
        var rgb = new byte[height * width * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                rgb[i] = (byte)(40 + 150 * x / width);
                rgb[i + 1] = (byte)((x / 8 + y / 8) % 2 == 0 ? 60 : 190);
                rgb[i + 2] = (byte)(30 + 180 * y / height);
            }
        return new CorruptionImage(rgb, height, width);
    }

    private static CorruptionImage Pixels(params (byte R, byte G, byte B)[] row) =>
        new(row.SelectMany(p => new[] { p.R, p.G, p.B }).ToArray(), 1, row.Length);

    private static byte[] Rgb(params (byte R, byte G, byte B)[] row) => row.SelectMany(p => new[] { p.R, p.G, p.B }).ToArray();

    /// <summary>
    /// brightness adds c to the HSV value (clipped at 1) and keeps hue and saturation, i.e. scales the pixel by V'/V:
    /// (100, 50, 0) + 0.1 → V 100 → 125.5: (125.5, 62.75, 0) → (125, 62, 0) (the package truncates); black becomes grey
    /// 25.5 → 25; white stays; (10, 200, 30) + 0.5 saturates V at 255: × 255/200 → (12.75, 255, 38.25) → (12, 255, 38).
    /// </summary>
    [Test]
    public void BrightnessRaisesTheHsvValueAndKeepsHueAndSaturation()
    {
        var image = Pixels((100, 50, 0), (0, 0, 0), (255, 255, 255));
        Assert.That(ImageCorruptions.Apply("brightness", image, 1, seed: 0), Is.EqualTo(Rgb((125, 62, 0), (25, 25, 25), (255, 255, 255))));
        Assert.That(ImageCorruptions.Apply("brightness", Pixels((10, 200, 30)), 5, seed: 0), Is.EqualTo(Rgb((12, 255, 38))));
    }

    /// <summary>
    /// contrast scales each channel's distance from its mean over the image: at severity 3 by 0.2. Means (100, 100, 101);
    /// (1, 103, 202) → (80.2, 100.6, 121.2) → (80, 100, 121), (199, 97, 0) → (119.8, 99.4, 80.8) → (119, 99, 80).
    /// </summary>
    [Test]
    public void ContrastPullsEachChannelTowardsItsMean()
    {
        var image = Pixels((1, 103, 202), (199, 97, 0));
        Assert.That(ImageCorruptions.Apply("contrast", image, 3, seed: 0), Is.EqualTo(Rgb((80, 100, 121), (119, 99, 80))));
    }

    /// <summary>
    /// saturate scales the HSV saturation and keeps hue and value. (201, 150, 100): V 201, S 101/201, hue in the red
    /// sector at f = 50/101. Severity 1 (×0.3): min = 201 − 0.3·101 = 170.7, middle = 201 − (1 − f)·30.3 = 185.7 →
    /// (201, 185, 170). (200, 150, 100) at severity 3 (×2): S 0.5 → 1, min 0, middle at f = ½: 100 → (200, 100, 0).
    /// </summary>
    [Test]
    public void SaturateScalesTheHsvSaturation()
    {
        Assert.That(ImageCorruptions.Apply("saturate", Pixels((201, 150, 100)), 1, seed: 0), Is.EqualTo(Rgb((201, 185, 170))));
        Assert.That(ImageCorruptions.Apply("saturate", Pixels((200, 150, 100)), 3, seed: 0), Is.EqualTo(Rgb((200, 100, 0))));
    }

    /// <summary>
    /// pixelate at severity 2 shrinks a 10×10 image to 5×5 with Pillow's box filter and blows it up with nearest: every 2×2
    /// block holds its four pixels' mean. Each block is m ± 2 on top, m ± 4 below, so the mean m is exact in any rounding.
    /// </summary>
    [Test]
    public void PixelateFillsEachBlockWithItsMean()
    {
        var random = new Random(5);
        var rgb = new byte[10 * 10 * 3];
        var means = new int[5, 5, 3];
        for (int by = 0; by < 5; by++)
            for (int bx = 0; bx < 5; bx++)
                for (int c = 0; c < 3; c++)
                {
                    int m = means[by, bx, c] = random.Next(4, 252);
                    int[] offsets = [-2, 2, 4, -4];
                    for (int k = 0; k < 4; k++) rgb[((2 * by + k / 2) * 10 + 2 * bx + k % 2) * 3 + c] = (byte)(m + offsets[k]);
                }
        var result = ImageCorruptions.Apply("pixelate", new CorruptionImage(rgb, 10, 10), 2, seed: 0);
        for (int y = 0; y < 10; y++)
            for (int x = 0; x < 10; x++)
                for (int c = 0; c < 3; c++)
                    Assert.That(result[(y * 10 + x) * 3 + c], Is.EqualTo(means[y / 2, x / 2, c]), $"({y}, {x}, {c})");
    }

    /// <summary>
    /// Pillow's box filter at a non-integer ratio, 5 → 2 pixels (s = 2.5): output 0 spans (0, 2.5] and takes the pixels
    /// whose centres lie there, 0.5, 1.5 and 2.5 (the right end belongs to it): (0 + 30 + 60)/3 = 30; output 1 takes the
    /// centres 3.5 and 4.5: (90 + 120)/2 = 105.
    /// </summary>
    [Test]
    public void PillowBoxAveragesThePixelsWhoseCentresFallInside()
    {
        Assert.That(ImageOps.ResizePillowBox([0, 30, 60, 90, 120], 1, 5, 1, 1, 2), Is.EqualTo(new byte[] { 30, 105 }));
    }

    /// <summary>jpeg_compression equals OpenCV's JPEG encode and decode at the package's quality per severity (25, 18, 15, 10, 7).</summary>
    [Test]
    public void JpegCompressionIsAnEncodeAndDecodeAtThePublishedQuality()
    {
        var image = Textured(24, 32);
        int[] qualities = [25, 18, 15, 10, 7];
        for (int severity = 1; severity <= 5; severity++)
        {
            using var rgb = Mat.FromPixelData(24, 32, MatType.CV_8UC3, image.Rgb);
            using var bgr = new Mat();
            Cv2.CvtColor(rgb, bgr, ColorConversionCodes.RGB2BGR);
            Cv2.ImEncode(".jpg", bgr, out byte[] encoded, new ImageEncodingParam(ImwriteFlags.JpegQuality, qualities[severity - 1]));
            using var decoded = Cv2.ImDecode(encoded, ImreadModes.Color);
            using var back = new Mat();
            Cv2.CvtColor(decoded, back, ColorConversionCodes.BGR2RGB);
            back.GetArray(out Vec3b[] pixels);
            var expected = pixels.SelectMany(p => new[] { p.Item0, p.Item1, p.Item2 }).ToArray();
            var actual = ImageCorruptions.Apply("jpeg_compression", image, severity, seed: 0);
            Assert.That(actual, Is.EqualTo(expected), $"severity {severity}");
            Assert.That(actual, Is.Not.EqualTo(image.Rgb), "JPEG at quality ≤ 25 loses something");
        }
    }

    /// <summary>
    /// impulse_noise replaces each value with probability c (0.03, 0.06, 0.09, 0.17, 0.27) by 0 or 255 with even odds. On a
    /// constant 128 image of 12,288 values the replaced count lies within 4 binomial standard deviations of n·c, and the
    /// salt share of them within 4 standard deviations of one half; every other value stays 128.
    /// </summary>
    [Test]
    public void ImpulseNoiseReplacesTheFractionOfValuesItPublishes()
    {
        double[] amounts = [0.03, 0.06, 0.09, 0.17, 0.27];
        var image = Constant(64, 64, 128);
        int n = image.Rgb.Length;
        for (int severity = 1; severity <= 5; severity++)
        {
            var result = ImageCorruptions.Apply("impulse_noise", image, severity, seed: 11);
            int salt = result.Count(v => v == 255), pepper = result.Count(v => v == 0);
            Assert.That(result.Count(v => v != 0 && v != 255 && v != 128), Is.Zero, $"severity {severity}");
            double p = amounts[severity - 1], replaced = salt + pepper;
            Assert.That(replaced, Is.EqualTo(n * p).Within(4 * Math.Sqrt(n * p * (1 - p))), $"severity {severity}");
            Assert.That(salt, Is.EqualTo(replaced / 2).Within(4 * Math.Sqrt(replaced / 4)), $"severity {severity}");
        }
    }

    /// <summary>
    /// gaussian_noise adds N(0, c) in [0, 1] units: on a constant 128 image the output's standard deviation is c within 3%
    /// (12,288 values; nothing clips up to severity 3) and its mean 128 less the truncation's half level; the deviation
    /// grows with every severity (clipping at 4 and 5 does not reverse the order).
    /// </summary>
    [Test]
    public void GaussianNoiseHasThePublishedStandardDeviationAndGrowsWithSeverity()
    {
        double[] std = [0.08, 0.12, 0.18, 0.26, 0.38];
        var image = Constant(64, 64, 128);
        double previous = 0;
        for (int severity = 1; severity <= 5; severity++)
        {
            var values = ImageCorruptions.Apply("gaussian_noise", image, severity, seed: 3).Select(v => v / 255.0).ToArray();
            double mean = values.Average(), deviation = Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Average());
            if (severity <= 3)
            {
                Assert.That(deviation, Is.EqualTo(std[severity - 1]).Within(0.03 * std[severity - 1]), $"severity {severity}");
                Assert.That(mean * 255, Is.EqualTo(127.5).Within(4 * 255 * std[severity - 1] / Math.Sqrt(values.Length) + 0.1), $"severity {severity}");
            }
            Assert.That(deviation, Is.GreaterThan(previous), $"severity {severity}");
            previous = deviation;
        }
    }

    /// <summary>
    /// shot_noise is Poisson(x·c)/c: at severity 1 (c = 60) on x = 128/255 its variance is x/c, so the standard deviation
    /// is √(x/60) within 4% and the mean x less at most one truncated level.
    /// </summary>
    [Test]
    public void ShotNoiseHasPoissonStatistics()
    {
        double x = 128 / 255.0;
        var values = ImageCorruptions.Apply("shot_noise", Constant(64, 64, 128), 1, seed: 8).Select(v => v / 255.0).ToArray();
        double mean = values.Average(), deviation = Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Average());
        Assert.That(deviation, Is.EqualTo(Math.Sqrt(x / 60)).Within(0.04 * Math.Sqrt(x / 60)));
        Assert.That(mean, Is.InRange(x - 1.0 / 255 - 4 * Math.Sqrt(x / 60 / values.Length), x + 4 * Math.Sqrt(x / 60 / values.Length)));
        Assert.That(NoiseCorruptions.PoissonCumulative(0.5)[0], Is.EqualTo(Math.Exp(-0.5)).Within(1e-15), "P(K = 0) = e^−λ");
    }

    /// <summary>
    /// The motion streak of a delta (255 at the centre of a 71×71 image) is a line of 2r + 1 pixels with the Gaussian
    /// weights exp(−i²/2σ²)/Σ: at 0° it runs left of the delta (pixel x0 − i holds tap i), at 90° upwards. Radius 15, σ 12
    /// (severity 4): 31 pixels, every tap visible. Everything else stays 0.
    /// </summary>
    [Test]
    public void MotionBlurOfADeltaIsALineOfThePublishedLength()
    {
        const int size = 71, centre = 35, radius = 15;
        const double sigma = 12;
        var weights = Enumerable.Range(0, 2 * radius + 1).Select(i => Math.Exp(-i * i / (2 * sigma * sigma))).ToArray();
        double total = weights.Sum();
        foreach (var (angle, dy, dx) in new[] { (0.0, 0, -1), (90.0, -1, 0) })
        {
            var delta = new float[size * size];
            delta[centre * size + centre] = 255;
            var streak = BlurCorruptions.MotionStreak(delta, size, size, 1, radius, sigma, angle);
            var expected = new float[size * size];
            for (int i = 0; i <= 2 * radius; i++) expected[(centre + i * dy) * size + centre + i * dx] = (float)(255 * weights[i] / total);
            Assert.That(streak, Is.EqualTo(expected).Within(1e-3), $"angle {angle}");
            Assert.That(streak.Count(v => v > 0), Is.EqualTo(2 * radius + 1), $"angle {angle}");
        }
    }

    /// <summary>zoom_blur averages the image with zooms of its centre: a constant image stays constant (within the truncation's one level).</summary>
    [Test]
    public void ZoomBlurOfAConstantImageIsConstant()
    {
        for (int severity = 1; severity <= 5; severity++)
        {
            var result = ImageCorruptions.Apply("zoom_blur", Constant(30, 40, 100), severity, seed: 0);
            Assert.That(result.Distinct().Count(), Is.EqualTo(1), $"severity {severity}");
            Assert.That((int)result[0], Is.InRange(99, 100), $"severity {severity}");
        }
        var textured = Textured(30, 40);
        Assert.That(ImageCorruptions.Apply("zoom_blur", textured, 3, seed: 0), Is.Not.EqualTo(textured.Rgb), "a textured image is blurred");
    }

    /// <summary>
    /// fog on a grey image adds the same haze to every channel, so pixels stay grey, and scales by max/(max + s): with x =
    /// 128/255 and haze in [0, s] every value lies in [x·x/(x + s), x]·255. Snow only lightens (max with the brightened grey,
    /// flakes added). Frost is a·x + b·frost with frost in [0, 255]: at least ⌊a·x⌋, at most a·x + 255b. Spatter's water only adds.
    /// </summary>
    [Test]
    public void WeatherKeepsShapeAndRange()
    {
        double[] fogStrength = [1.5, 2, 2.5, 2.5, 3];
        (double A, double B)[] frost = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)];
        var grey = Constant(48, 40, 128);
        var textured = Textured(48, 40);
        double x = 128 / 255.0;
        for (int severity = 1; severity <= 5; severity++)
        {
            var fog = ImageCorruptions.Apply("fog", grey, severity, seed: 2);
            Assert.That(fog, Has.Length.EqualTo(grey.Rgb.Length));
            for (int i = 0; i < fog.Length; i += 3) Assert.That(fog[i + 1] == fog[i] && fog[i + 2] == fog[i], $"fog severity {severity}: grey stays grey");
            Assert.That(fog.Min(), Is.GreaterThanOrEqualTo((int)(255 * x * x / (x + fogStrength[severity - 1])) - 1), $"fog severity {severity}");
            Assert.That(fog.Max(), Is.LessThanOrEqualTo(128), $"fog severity {severity}");
            Assert.That(fog.Distinct().Count(), Is.GreaterThan(5), $"fog severity {severity}: a haze, not a constant");

            var snow = ImageCorruptions.Apply("snow", textured, severity, seed: 2);
            Assert.That(snow, Has.Length.EqualTo(textured.Rgb.Length));
            for (int i = 0; i < snow.Length; i++) Assert.That((int)snow[i], Is.GreaterThanOrEqualTo(textured.Rgb[i] - 1), $"snow severity {severity} at {i}");
            Assert.That(snow.Select(v => (double)v).Average(), Is.GreaterThan(textured.Rgb.Select(v => (double)v).Average()), $"snow severity {severity}");

            var frosted = ImageCorruptions.Apply("frost", textured, severity, seed: 2);
            Assert.That(frosted, Has.Length.EqualTo(textured.Rgb.Length));
            var (a, b) = frost[severity - 1];
            for (int i = 0; i < frosted.Length; i++)
                Assert.That((int)frosted[i], Is.InRange((int)(a * textured.Rgb[i]) - 1, Math.Min(255, a * textured.Rgb[i] + 255 * b + 1)), $"frost severity {severity} at {i}");
            Assert.That(frosted, Is.Not.EqualTo(ImageCorruptions.Apply("brightness", textured, 1, seed: 0)));

            // spatter's water (severities 1–3) adds pale turquoise drops and never darkens; its mud (4–5) covers with brown (63, 42, 20).
            var spattered = ImageCorruptions.Apply("spatter", textured, severity, seed: 2);
            Assert.That(spattered, Has.Length.EqualTo(textured.Rgb.Length));
            Assert.That(spattered, Is.Not.EqualTo(textured.Rgb), $"spatter severity {severity}");
            if (severity <= 3)
                for (int i = 0; i < spattered.Length; i++) Assert.That((int)spattered[i], Is.GreaterThanOrEqualTo(textured.Rgb[i] - 1), $"spatter severity {severity} at {i}");
        }
    }

    /// <summary>
    /// glass_blur's local shuffle only swaps pixels, so it is a permutation of them; its targets stay within (h + dy, w + dx)
    /// with dy, dx ≥ −d from rows and columns past d, so row 0 and column 0 are never touched. It does move pixels.
    /// </summary>
    [Test]
    public void GlassBlurShufflesPixelsLocally()
    {
        int height = 20, width = 24;
        var pixels = new byte[height * width * 3];
        for (int p = 0; p < height * width; p++) (pixels[3 * p], pixels[3 * p + 1], pixels[3 * p + 2]) = ((byte)(p % 256), (byte)(p / 256), (byte)(p % 7));
        var shuffled = (byte[])pixels.Clone();
        BlurCorruptions.Shuffle(shuffled, height, width, delta: 2, iterations: 3, new CorruptionRandom(4));
        static IEnumerable<(byte, byte, byte)> Triples(byte[] b) => Enumerable.Range(0, b.Length / 3).Select(p => (b[3 * p], b[3 * p + 1], b[3 * p + 2]));
        Assert.That(Triples(shuffled).Order(), Is.EqualTo(Triples(pixels).Order()));
        Assert.That(shuffled, Is.Not.EqualTo(pixels));
        for (int x = 0; x < width; x++) Assert.That(shuffled.AsSpan(x * 3, 3).ToArray(), Is.EqualTo(pixels.AsSpan(x * 3, 3).ToArray()), $"row 0, column {x}");
        for (int y = 0; y < height; y++) Assert.That(shuffled.AsSpan(y * width * 3, 3).ToArray(), Is.EqualTo(pixels.AsSpan(y * width * 3, 3).ToArray()), $"column 0, row {y}");
    }

    /// <summary>
    /// Every corruption is a function of (image, severity, seed): the same seed gives the same bytes, and the random ones
    /// give others for another seed. Severity 0 is the image itself, and every output has the image's size.
    /// </summary>
    [Test]
    public void CorruptionsAreDeterministicPerSeed()
    {
        var image = Textured(40, 48);
        string[] random = ["gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "snow", "frost", "fog", "elastic_transform",
            "speckle_noise", "spatter"];
        Assert.That(ImageCorruptions.All, Has.Count.EqualTo(19));
        foreach (var corruption in ImageCorruptions.All)
        {
            Assert.That(ImageCorruptions.Apply(corruption, image, 0, seed: 1), Is.EqualTo(image.Rgb), corruption);
            for (int severity = 1; severity <= 5; severity++)
            {
                var first = ImageCorruptions.Apply(corruption, image, severity, seed: 1);
                Assert.That(first, Has.Length.EqualTo(image.Rgb.Length), corruption);
                Assert.That(ImageCorruptions.Apply(corruption, image, severity, seed: 1), Is.EqualTo(first), $"{corruption} {severity}");
                if (random.Contains(corruption))
                    Assert.That(ImageCorruptions.Apply(corruption, image, severity, seed: 2), Is.Not.EqualTo(first), $"{corruption} {severity}");
            }
        }
    }

    /// <summary>
    /// The blurs spread a white 9×9 square on black further as the severity grows: the count of pixels they change rises
    /// strictly from severity 1 to 5 for defocus_blur (disk radius 3 → 10) and gaussian_blur (σ 1 → 6).
    /// </summary>
    [Test]
    public void BlurExtentGrowsWithSeverity()
    {
        const int size = 61;
        var rgb = new byte[size * size * 3];
        for (int y = 26; y < 35; y++)
            for (int x = 26; x < 35; x++)
                for (int c = 0; c < 3; c++) rgb[(y * size + x) * 3 + c] = 255;
        var square = new CorruptionImage(rgb, size, size);
        foreach (var corruption in new[] { "defocus_blur", "gaussian_blur" })
        {
            int previous = 0;
            for (int severity = 1; severity <= 5; severity++)
            {
                var result = ImageCorruptions.Apply(corruption, square, severity, seed: 0);
                int changed = Enumerable.Range(0, size * size).Count(p => result[3 * p] != rgb[3 * p]);
                Assert.That(changed, Is.GreaterThan(previous), $"{corruption} severity {severity}");
                previous = changed;
            }
        }
    }

    /// <summary>Groups expand to mmdet's members in order, names repeat once, and an unknown name is refused listing the valid ones.</summary>
    [Test]
    public void CorruptionNamesResolveAsMmdetsGroups()
    {
        Assert.That(ImageCorruptions.Resolve(["noise"], "--corruptions"), Is.EqualTo(new[] { "gaussian_noise", "shot_noise", "impulse_noise" }));
        Assert.That(ImageCorruptions.Resolve(["benchmark"], "--corruptions"), Has.Count.EqualTo(15).And.Not.Contains("saturate"));
        Assert.That(ImageCorruptions.Resolve(["holdout", "speckle_noise", "fog"], "--corruptions"),
            Is.EqualTo(new[] { "speckle_noise", "gaussian_blur", "spatter", "saturate", "fog" }));
        Assert.That(ImageCorruptions.Resolve(["all"], "--corruptions"), Has.Count.EqualTo(19));
        var error = Assert.Throws<VimException>(() => ImageCorruptions.Resolve(["fgo"], "--corruptions"))!;
        Assert.That(error.Message, Does.StartWith("--corruptions: unknown corruption 'fgo'").And.Contain("benchmark").And.Contain("jpeg_compression"));
        Assert.Throws<VimException>(() => ImageCorruptions.Apply("fog", Textured(8, 8), 6, seed: 0));
    }

    /// <summary>A corrupted split's sample i is its decoded image through the corruption with seed i.</summary>
    [Test]
    public void CorruptedImagesSeedEachSampleWithItsIndex()
    {
        var source = new FixedImages([Textured(16, 20), Textured(18, 12)]);
        var corrupted = new CorruptedImages(source, "gaussian_noise", 2);
        Assert.That(corrupted.Count, Is.EqualTo(2));
        for (int i = 0; i < 2; i++)
        {
            var expected = ImageCorruptions.Apply("gaussian_noise", source.Images[i], 2, seed: i);
            Assert.That(corrupted.Load(i).Image, Is.EqualTo(expected));
        }
        Assert.That(source.Load(0).Image, Is.EqualTo(source.Images[0].Rgb), "the source's own image is left alone");
    }

    private sealed class FixedImages(CorruptionImage[] images) : ISampleSource
    {
        public CorruptionImage[] Images { get; } = images;

        public int Count => Images.Length;

        public DataSample Load(int index) => new(index, $"image{index}.png", (byte[])Images[index].Rgb.Clone(), Images[index].Height, Images[index].Width);
    }
}
