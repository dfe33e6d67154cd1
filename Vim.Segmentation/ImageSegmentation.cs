using Vim.Core;

namespace Vim.Segmentation;

/// <summary>
/// One image's segmentation from a <see cref="Segmentor"/>, as plain managed values (nothing to dispose): the class of
/// every pixel at the image's original size, the names and palette colours of the classes, and the per-class scores when
/// they were asked for.
/// </summary>
public sealed class ImageSegmentation
{
    public ImageSegmentation(int height, int width, ushort[] classMap, IReadOnlyList<string> classNames,
        IReadOnlyList<(byte R, byte G, byte B)> palette, ClassScores? scores)
    {
        ArgumentNullException.ThrowIfNull(classMap);
        if (classMap.Length != (long)height * width)
            throw new ArgumentException($"{classMap.Length} class indices for a {width}x{height} image", nameof(classMap));
        (Height, Width, ClassMap, ClassNames, Palette, Scores) = (height, width, classMap, classNames, palette, scores);
    }

    public int Height { get; }
    public int Width { get; }

    /// <summary>Each pixel's class index, row-major (index y·<see cref="Width"/> + x): the argmax of the scores.</summary>
    public ushort[] ClassMap { get; }

    /// <summary>The name of each class index.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The colour (RGB) of each class index, the one `vim infer` paints its color/ and overlay/ PNGs with.</summary>
    public IReadOnlyList<(byte R, byte G, byte B)> Palette { get; }

    /// <summary>The per-class scores the prediction was asked for (a <see cref="ScoreRequest"/>), else null.</summary>
    public ClassScores? Scores { get; }

    /// <summary>The class index of pixel (x, y).</summary>
    public int ClassAt(int x, int y)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"pixel ({x}, {y}) is outside the {Width}x{Height} image");
        return ClassMap[y * Width + x];
    }
}

/// <summary>What the scores are: one pass's logits, or the mean of several passes' softmax probabilities (flip, scales).</summary>
public enum ScoreKind
{
    Logits,
    Probabilities,
}

/// <summary>
/// Which classes' scores a prediction returns besides its class map (mmseg's <c>seg_logits</c>). Each class costs
/// 4 bytes per pixel of the original image (ADE20k's 150 classes on a 512×683 image: 210 MB), so ask for the classes you
/// read: <see cref="For"/> some, <see cref="AllClasses"/> every one.
/// </summary>
public sealed class ScoreRequest
{
    private ScoreRequest(IReadOnlyList<int>? classes) => Classes = classes;

    /// <summary>The requested class indices in the order given; null for every class.</summary>
    public IReadOnlyList<int>? Classes { get; }

    public static ScoreRequest AllClasses { get; } = new(null);

    /// <summary>The scores of these class indices alone (each once).</summary>
    public static ScoreRequest For(params int[] classIndices)
    {
        ArgumentNullException.ThrowIfNull(classIndices);
        if (classIndices.Length == 0) throw new VimException("ScoreRequest.For: no class index given; use ScoreRequest.AllClasses for every class");
        foreach (var classIndex in classIndices)
            if (classIndex < 0) throw new VimException($"ScoreRequest.For: class index {classIndex} is negative");
        if (classIndices.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1) is { } repeated)
            throw new VimException($"ScoreRequest.For: class index {repeated.Key} is given twice");
        return new ScoreRequest(classIndices.ToArray());
    }
}

/// <summary>
/// Per-class scores at the original image size, one plane per class of <see cref="Classes"/>: <see cref="Values"/> holds
/// them class by class, each plane row-major (index slot·H·W + y·W + x, slot the class's position in <see cref="Classes"/>).
/// </summary>
public sealed class ClassScores
{
    public ClassScores(IReadOnlyList<int> classes, int height, int width, float[] values, ScoreKind kind)
    {
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != (long)classes.Count * height * width)
            throw new ArgumentException($"{values.Length} scores for {classes.Count} classes of a {width}x{height} image", nameof(values));
        _classes = classes.ToArray();
        (Height, Width, Values, Kind) = (height, width, values, kind);
    }

    private readonly int[] _classes;

    public IReadOnlyList<int> Classes => _classes;
    public int Height { get; }
    public int Width { get; }
    public float[] Values { get; }
    public ScoreKind Kind { get; }

    /// <summary>The plane of one class index (row-major), which must be among <see cref="Classes"/>.</summary>
    public ReadOnlySpan<float> Of(int classIndex)
    {
        int slot = Array.IndexOf(_classes, classIndex);
        if (slot < 0)
            throw new ArgumentException($"class {classIndex} has no scores here; the prediction was asked for classes {string.Join(", ", Classes)}", nameof(classIndex));
        int plane = Height * Width;
        return Values.AsSpan(slot * plane, plane);
    }
}
