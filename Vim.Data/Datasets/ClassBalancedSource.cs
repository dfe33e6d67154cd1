namespace Vim.Data.Datasets;

/// <summary>
/// A source whose images are visited as often as their rarest class asks (MMDetection's ClassBalancedDataset, detectron2's
/// RepeatFactorTrainingSampler in its deterministic form; Gupta et al., LVIS, 2019): a class c found in a fraction f(c) of
/// the source's images gets the repeat factor r(c) = max(1, √(threshold / f(c))), an image the largest r(c) of its classes
/// (1 for an image without any), and the image appears ⌈r⌉ times. The copies of a source image are consecutive samples
/// in source order (mmdet's repeat_indices), each with an index of its own, so a loader shuffles every copy independently
/// and seeds each copy's augmentation differently, as with <see cref="RepeatedSource"/>.
/// </summary>
public sealed class ClassBalancedSource : ISampleSource
{
    /// <summary>The copies of source images 0..i are this source's samples [0, _ends[i]); strictly increasing, as every image has a copy.</summary>
    private readonly int[] _ends;
    private readonly double[] _imageRepeatFactors;

    /// <param name="classesOf">The classes present in the source's sample i, read without decoding the image (repeats are ignored).</param>
    /// <param name="threshold">The image fraction below which a class's images are repeated (mmdet's oversample_thr), in (0, 1].</param>
    public ClassBalancedSource(ISampleSource source, Func<int, IEnumerable<int>> classesOf, double threshold)
    {
        if (!(threshold > 0 && threshold <= 1))
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "a class-balancing threshold is an image fraction in (0, 1]");
        Source = source;
        Threshold = threshold;
        int images = source.Count;
        var classes = new int[images][];
        var imagesWithClass = new SortedDictionary<int, int>();
        for (int i = 0; i < images; i++)
        {
            classes[i] = classesOf(i).Distinct().ToArray();
            foreach (var c in classes[i]) imagesWithClass[c] = imagesWithClass.GetValueOrDefault(c) + 1;
        }
        // f(c) as one correctly rounded division and r(c) as mmdet computes them in Python floats, so ⌈r⌉ agrees with it
        // where √(threshold / f) lands near an integer.
        ClassFrequencies = imagesWithClass.ToDictionary(pair => pair.Key, pair => (double)pair.Value / images);
        ClassRepeatFactors = ClassFrequencies.ToDictionary(pair => pair.Key, pair => ClassRepeatFactor(threshold, pair.Value));
        _imageRepeatFactors = new double[images];
        _ends = new int[images];
        long total = 0;
        for (int i = 0; i < images; i++)
        {
            _imageRepeatFactors[i] = classes[i].Length == 0 ? 1.0 : classes[i].Max(c => ClassRepeatFactors[c]);
            total += (long)Math.Ceiling(_imageRepeatFactors[i]);
            if (total > int.MaxValue)
                throw new OverflowException($"class balancing makes more than {int.MaxValue} samples of {images} images (int indices)");
            _ends[i] = (int)total;
        }
        Count = (int)total;
    }

    public ISampleSource Source { get; }

    public double Threshold { get; }

    public int Count { get; }

    /// <summary>f(c): the fraction of the source's images that hold class c, for each class found in any.</summary>
    public IReadOnlyDictionary<int, double> ClassFrequencies { get; }

    /// <summary>r(c) = max(1, √(threshold / f(c))) for each class found in any image.</summary>
    public IReadOnlyDictionary<int, double> ClassRepeatFactors { get; }

    /// <summary>r(I) of the source's image <paramref name="sourceIndex"/>: the largest r(c) of its classes, 1 without any.</summary>
    public double ImageRepeatFactor(int sourceIndex) => _imageRepeatFactors[sourceIndex];

    /// <summary>How many samples of this source are copies of the source's image <paramref name="sourceIndex"/>: ⌈r(I)⌉.</summary>
    public int Copies(int sourceIndex) => _ends[sourceIndex] - (sourceIndex == 0 ? 0 : _ends[sourceIndex - 1]);

    /// <summary>The category-level repeat factor of a class found in a fraction <paramref name="frequency"/> of the images.</summary>
    public static double ClassRepeatFactor(double threshold, double frequency) => Math.Max(1.0, Math.Sqrt(threshold / frequency));

    /// <summary>The index in <see cref="Source"/> of this source's sample <paramref name="index"/>.</summary>
    public int SourceIndex(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the class-balanced source has {Count} samples");
        // The first image whose copies end after the index; an exact hit on an end is the next image's first copy.
        int found = Array.BinarySearch(_ends, index);
        return found >= 0 ? found + 1 : ~found;
    }

    public DataSample Load(int index) => Source.Load(SourceIndex(index));
}
