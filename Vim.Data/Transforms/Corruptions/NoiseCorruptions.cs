namespace Vim.Data.Transforms.Corruptions;

/// <summary>
/// imagecorruptions' noise corruptions (Hendrycks &amp; Dietterich's ImageNet-C definitions, with the parameters per
/// severity of the package's corruptions.py), each value of every channel drawn independently as the package draws
/// over the whole HxWx3 array.
/// </summary>
internal static class NoiseCorruptions
{
    /// <summary>gaussian_noise: the standard deviation added in [0, 1] units.</summary>
    public static readonly double[] GaussianStd = [0.08, 0.12, 0.18, 0.26, 0.38];

    /// <summary>shot_noise: photons per unit intensity, Poisson(x·c)/c.</summary>
    public static readonly double[] ShotPhotons = [60, 25, 12, 5, 3];

    /// <summary>impulse_noise: the fraction of values replaced by salt (1) or pepper (0), half each (skimage's s&amp;p).</summary>
    public static readonly double[] ImpulseAmount = [0.03, 0.06, 0.09, 0.17, 0.27];

    /// <summary>speckle_noise: the standard deviation of the multiplicative noise, x + x·N(0, c).</summary>
    public static readonly double[] SpeckleStd = [0.15, 0.2, 0.35, 0.45, 0.6];

    /// <summary>x + N(0, c): additive noise in [0, 1] units.</summary>
    public static byte[] Gaussian(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double std = GaussianStd[severity - 1];
        return WithNormalNoise(image.Rgb, random, (x, normal) => x + std * normal);
    }

    /// <summary>x + x·N(0, c): noise proportional to the intensity.</summary>
    public static byte[] Speckle(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double std = SpeckleStd[severity - 1];
        return WithNormalNoise(image.Rgb, random, (x, normal) => x + x * std * normal);
    }

    /// <summary>Each value x/255 with one standard normal draw of its own, through <paramref name="noisy"/>, cast back to bytes.</summary>
    private static byte[] WithNormalNoise(byte[] rgb, CorruptionRandom random, Func<double, double, double> noisy)
    {
        var result = new byte[rgb.Length];
        for (int i = 0; i < rgb.Length; i++) result[i] = CorruptionPixels.UnitToByte(noisy(rgb[i] / 255.0, random.Normal()));
        return result;
    }

    /// <summary>
    /// Poisson(x·c)/c per value. x takes 256 values only, so each one's Poisson distribution is tabulated once (its
    /// cumulative probabilities up to a tail below 1e-16) and sampled exactly by inverting a uniform draw.
    /// </summary>
    public static byte[] Shot(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double photons = ShotPhotons[severity - 1];
        var tables = new double[256][];
        var rgb = image.Rgb;
        var result = new byte[rgb.Length];
        for (int i = 0; i < rgb.Length; i++)
        {
            int value = rgb[i];
            var cumulative = tables[value] ??= PoissonCumulative(value / 255.0 * photons);
            int k = Array.BinarySearch(cumulative, random.Uniform());
            // Not found: the complement of the first larger entry, i.e. the smallest k with CDF(k) > u.
            if (k < 0) k = ~k;
            result[i] = CorruptionPixels.UnitToByte(Math.Min(k, cumulative.Length - 1) / photons);
        }
        return result;
    }

    /// <summary>
    /// P(K ≤ k) for k = 0, 1, … of Poisson(<paramref name="mean"/>), until the rest of the mass is below 1e-15 or k is
    /// 12 standard deviations past the mean (the sum of doubles may settle an ulp short of 1).
    /// </summary>
    internal static double[] PoissonCumulative(double mean)
    {
        var cumulative = new List<double>();
        double probability = Math.Exp(-mean), total = 0;
        for (int k = 0; ; k++)
        {
            if (k > 0) probability *= mean / k;
            total += probability;
            cumulative.Add(total);
            if (k > mean && (1 - total < 1e-15 || k > mean + 12 * Math.Sqrt(mean) + 20)) break;
        }
        cumulative[^1] = 1.0;
        return [.. cumulative];
    }

    /// <summary>skimage's random_noise(mode='s&amp;p', amount=c): each value independently replaced with probability c, by 1 or 0 with even odds.</summary>
    public static byte[] Impulse(CorruptionImage image, int severity, CorruptionRandom random)
    {
        double amount = ImpulseAmount[severity - 1];
        var rgb = image.Rgb;
        var result = new byte[rgb.Length];
        for (int i = 0; i < rgb.Length; i++)
        {
            double x = rgb[i] / 255.0;
            if (random.Uniform() < amount) x = random.Uniform() < 0.5 ? 1.0 : 0.0;
            result[i] = CorruptionPixels.UnitToByte(x);
        }
        return result;
    }
}
