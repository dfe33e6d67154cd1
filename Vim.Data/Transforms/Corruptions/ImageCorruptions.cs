using Vim.Core;

namespace Vim.Data.Transforms.Corruptions;

/// <summary>An 8-bit RGB image (HWC, row-major) a corruption reads; it is never changed.</summary>
public readonly record struct CorruptionImage(byte[] Rgb, int Height, int Width);

/// <summary>
/// The image corruptions of "Benchmarking Robustness in Object Detection" (Michaelis et al. 2019, COCO-C; after Hendrycks
/// &amp; Dietterich's ImageNet-C), as the imagecorruptions package defines them (its corruptions.py: formulas and
/// parameters per severity 1–5), written with OpenCV and our own loops. Each is a deterministic function of the image,
/// the severity and a seed (<see cref="Apply"/>); severity 0 is the clean image. Names and groups are the package's and
/// mmdet's test_robustness.py's. Departures: frost draws a procedural texture (<see cref="FrostTexture"/>) instead of
/// the package's photographs, and every corruption draws its own random numbers, so a corrupted image matches the
/// package's in distribution, not pixel for pixel.
/// </summary>
public static class ImageCorruptions
{
    /// <summary>The highest severity; 0 means no corruption.</summary>
    public const int MaxSeverity = 5;

    private delegate byte[] Corrupt(CorruptionImage image, int severity, CorruptionRandom random);

    private static readonly (string Name, string Group, Corrupt Function)[] Catalogue =
    [
        ("gaussian_noise", "noise", NoiseCorruptions.Gaussian),
        ("shot_noise", "noise", NoiseCorruptions.Shot),
        ("impulse_noise", "noise", NoiseCorruptions.Impulse),
        ("defocus_blur", "blur", BlurCorruptions.Defocus),
        ("glass_blur", "blur", BlurCorruptions.Glass),
        ("motion_blur", "blur", BlurCorruptions.Motion),
        ("zoom_blur", "blur", BlurCorruptions.Zoom),
        ("snow", "weather", WeatherCorruptions.Snowfall),
        ("frost", "weather", WeatherCorruptions.Frosted),
        ("fog", "weather", WeatherCorruptions.Fogged),
        ("brightness", "weather", WeatherCorruptions.Brighter),
        ("contrast", "digital", DigitalCorruptions.LowerContrast),
        ("elastic_transform", "digital", DigitalCorruptions.Elastic),
        ("pixelate", "digital", DigitalCorruptions.Pixelated),
        ("jpeg_compression", "digital", DigitalCorruptions.Jpeg),
        ("speckle_noise", "holdout", NoiseCorruptions.Speckle),
        ("gaussian_blur", "holdout", BlurCorruptions.Gaussian),
        ("spatter", "holdout", WeatherCorruptions.Spattered),
        ("saturate", "holdout", DigitalCorruptions.Saturated),
    ];

    /// <summary>The 19 corruptions, the benchmark's 15 first, in the package's order.</summary>
    public static IReadOnlyList<string> All { get; } = Catalogue.Select(c => c.Name).ToArray();

    /// <summary>The benchmark's 15 (noise, blur, weather, digital): mPC is their mean.</summary>
    public static IReadOnlyList<string> Benchmark { get; } = Catalogue.Where(c => c.Group != "holdout").Select(c => c.Name).ToArray();

    /// <summary>What <c>--corruptions</c> takes besides single names: mmdet's groups.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Groups { get; } = new Dictionary<string, IReadOnlyList<string>>
    {
        ["benchmark"] = Benchmark,
        ["all"] = All,
        ["noise"] = Members("noise"),
        ["blur"] = Members("blur"),
        ["weather"] = Members("weather"),
        ["digital"] = Members("digital"),
        ["holdout"] = Members("holdout"),
    };

    /// <summary>The corruption whose texture is ours rather than the package's (see <see cref="FrostTexture"/>).</summary>
    public const string ProceduralFrost = "frost";

    private static IReadOnlyList<string> Members(string group) => Catalogue.Where(c => c.Group == group).Select(c => c.Name).ToArray();

    /// <summary>The group a corruption belongs to: noise, blur, weather, digital or holdout.</summary>
    public static string GroupOf(string corruption) => Find(corruption).Group;

    /// <summary>
    /// Names and group names (<see cref="Groups"/>) expanded into corruptions, in the order given, each once. An unknown
    /// name is refused naming <paramref name="option"/> and listing what is valid.
    /// </summary>
    public static IReadOnlyList<string> Resolve(IEnumerable<string> requested, string option)
    {
        var result = new List<string>();
        foreach (var raw in requested)
        {
            var name = raw.Trim();
            if (name.Length == 0) continue;
            IEnumerable<string> members = Groups.TryGetValue(name, out var group) ? group
                : All.Contains(name) ? [name]
                : throw new VimException($"{option}: unknown corruption '{name}'; expected a group ({string.Join(", ", Groups.Keys)}) " +
                    $"or corruption names ({string.Join(", ", All)}), comma-separated");
            foreach (var member in members) if (!result.Contains(member)) result.Add(member);
        }
        if (result.Count == 0)
            throw new VimException($"{option}: expected at least one corruption or group ({string.Join(", ", Groups.Keys)}), got none");
        return result;
    }

    /// <summary>
    /// <paramref name="corruption"/> at <paramref name="severity"/> (0 = the image itself, copied; 1–5) of
    /// <paramref name="image"/>, with random draws from <paramref name="seed"/>: the same arguments give the same bytes.
    /// </summary>
    public static byte[] Apply(string corruption, CorruptionImage image, int severity, int seed)
    {
        var (_, _, function) = Find(corruption);
        if (severity is < 0 or > MaxSeverity)
            throw new VimException($"{corruption}: severity {severity} is outside 0–{MaxSeverity} (0 is the clean image)");
        if (image.Rgb.Length != 3L * image.Height * image.Width)
            throw new ArgumentException($"{corruption}: {image.Rgb.Length} bytes for a {image.Width}x{image.Height} RGB image", nameof(image));
        if (severity == 0 || image.Rgb.Length == 0) return (byte[])image.Rgb.Clone();
        return function(image, severity, new CorruptionRandom(seed));
    }

    private static (string Name, string Group, Corrupt Function) Find(string corruption)
    {
        foreach (var entry in Catalogue) if (entry.Name == corruption) return entry;
        throw new VimException($"unknown corruption '{corruption}'; expected one of {string.Join(", ", All)}");
    }
}
