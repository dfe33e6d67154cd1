using Vim.Core;
using Vim.Core.Config;

namespace Vim.Data.Datasets;

/// <summary>Semantic segmentation from an image folder and a label-PNG folder (ADE20k or a custom layout).</summary>
public sealed class SegmentationFolderDataset : ISampleSource
{
    public const int DefaultIgnoreIndex = 255;

    private readonly string[] _images;
    /// <summary>Each image's label PNG; null for a split without labels.</summary>
    private readonly string[]? _labels;

    public SegmentationFolderDataset(SegmentationFolderOptions options)
    {
        Options = options;
        if (options.ClassNames.Count is 0 or > ushort.MaxValue)
            throw new VimException($"segmentation dataset {options.ImageDir}: needs 1..{ushort.MaxValue} class names (16-bit labels), got {options.ClassNames.Count}.");
        if (options.IgnoreIndex is < 0 or > ushort.MaxValue || options.IgnoreIndex < options.ClassNames.Count)
            throw new VimException($"segmentation dataset {options.ImageDir}: ignore index {options.IgnoreIndex} must be a 16-bit value outside the class indices " +
                $"0..{options.ClassNames.Count - 1}; with {options.ClassNames.Count} classes use e.g. {ushort.MaxValue}.");
        if (!Directory.Exists(options.ImageDir)) throw new VimException($"{options.ImageDir}: image folder not found.");
        if (options.AnnotationDir is not null && !Directory.Exists(options.AnnotationDir)) throw new VimException($"{options.AnnotationDir}: annotation folder not found.");
        _images = FilesEndingIn(options.ImageDir, options.ImageSuffix);
        if (_images.Length == 0)
            throw new VimException($"{options.ImageDir}: no images ending in \"{options.ImageSuffix}\".");
        if (options.AnnotationDir is null)
        {
            _labels = null;
            return;
        }
        var imageStems = _images.Select(p => Stem(options.ImageDir, p, options.ImageSuffix)).ToArray();
        _labels = imageStems.Select(stem => Path.Combine(options.AnnotationDir, stem + options.AnnotationSuffix)).ToArray();
        // Both directions, when the dataset is built rather than when the loader reaches the file: an image without its
        // label map would stop training hours in, and a label map without its image (e.g. an extraction that stopped
        // early) would go unnoticed, since the image folder alone decides what is used.
        var labelFiles = FilesEndingIn(options.AnnotationDir, options.AnnotationSuffix);
        var labelStems = labelFiles.Select(p => Stem(options.AnnotationDir, p, options.AnnotationSuffix)).ToArray();
        var labelled = labelStems.ToHashSet(StringComparer.Ordinal);
        var imaged = imageStems.ToHashSet(StringComparer.Ordinal);
        var unlabelled = Enumerable.Range(0, _images.Length).Where(i => !labelled.Contains(imageStems[i])).ToList();
        var orphans = Enumerable.Range(0, labelFiles.Length).Where(i => !imaged.Contains(labelStems[i])).ToList();
        if (unlabelled.Count > 0 || orphans.Count > 0)
        {
            var problems = new List<string>();
            if (unlabelled.Count > 0)
                problems.Add($"{unlabelled.Count} of the {_images.Length} images in {options.ImageDir} have no label map in {options.AnnotationDir} " +
                    $"({Listed(unlabelled.Select(i => _images[i]).ToList())}; expected e.g. {_labels[unlabelled[0]]})");
            if (orphans.Count > 0)
                problems.Add($"{orphans.Count} label map(s) in {options.AnnotationDir} have no image in {options.ImageDir} " +
                    $"({Listed(orphans.Select(i => labelFiles[i]).ToList())}; expected e.g. {Path.Combine(options.ImageDir, labelStems[orphans[0]] + options.ImageSuffix)})");
            throw new VimException($"segmentation dataset {options.ImageDir}: images and label maps do not pair up: {string.Join("; and ", problems)}.");
        }
    }

    /// <summary>Files below <paramref name="folder"/> (any depth) whose names end in <paramref name="suffix"/>, in ordinal order.</summary>
    private static string[] FilesEndingIn(string folder, string suffix) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(p => p.EndsWith(suffix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();

    /// <summary>How many unpaired files an error lists.</summary>
    private const int ListedUnpaired = 5;

    private static string Listed(IReadOnlyList<string> paths) =>
        $"{(paths.Count > ListedUnpaired ? $"first {ListedUnpaired}" : "files")}: {string.Join(", ", paths.Take(ListedUnpaired))}";

    /// <summary>The path below <paramref name="folder"/> without <paramref name="suffix"/>: what pairs an image with its label map.</summary>
    private static string Stem(string folder, string path, string suffix) => Path.GetRelativePath(folder, path)[..^suffix.Length];

    /// <summary>The ADE20k layout (images/{split}/*.jpg and annotations/{split}/*.png) with reduce_zero_label.</summary>
    /// <param name="classNames">The 150 official names unless given (the demo data writes its own class_names.txt).</param>
    public static SegmentationFolderDataset Ade20k(string root, string split, IReadOnlyList<string>? classNames = null) =>
        InLayout(DatasetLayout.Ade20k(root), split, classNames ?? Ade20kClasses.Names, reduceZeroLabel: true);

    /// <summary>A split of an image-and-label-map <paramref name="layout"/>.</summary>
    public static SegmentationFolderDataset InLayout(DatasetLayout layout, string split, IReadOnlyList<string> classNames, bool reduceZeroLabel) =>
        new(new SegmentationFolderOptions
        {
            ImageDir = layout.ImageDir(split),
            AnnotationDir = layout.LabelDir(split),
            ImageSuffix = layout.ImageSuffix,
            AnnotationSuffix = layout.LabelSuffix,
            ClassNames = classNames,
            ReduceZeroLabel = reduceZeroLabel,
        });

    /// <summary>Reads a class list: one name per line, blank lines ignored.</summary>
    public static IReadOnlyList<string> ReadClassNames(string path)
    {
        if (!File.Exists(path)) throw new VimException($"{path}: class list not found.");
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (names.Length == 0) throw new VimException($"{path}: class list is empty; expected one class name per line.");
        return names;
    }

    public SegmentationFolderOptions Options { get; }
    public int Count => _images.Length;
    public IReadOnlyList<string> ClassNames => Options.ClassNames;
    public IReadOnlyList<string> ImagePaths => _images;
    public int IgnoreIndex => Options.IgnoreIndex;

    public DataSample Load(int index)
    {
        var sample = LoadImage(index);
        if (_labels is null) return sample;
        var (labels, lh, lw) = LoadLabelMap(index);
        if (lh != sample.Height || lw != sample.Width)
            throw new VimException($"{_labels[index]}: label map is {lw}x{lh} but its image {_images[index]} is {sample.Width}x{sample.Height}.");
        sample.LabelMap = labels;
        return sample;
    }

    /// <summary>Sample <paramref name="index"/>'s image alone, without its label map.</summary>
    public DataSample LoadImage(int index)
    {
        var (rgb, h, w) = ImageDecoder.ReadRgb(_images[index]);
        return new DataSample(index, _images[index], rgb, h, w);
    }

    /// <summary>
    /// The same samples without their label maps: what evaluation loaders read, since evaluation compares against each
    /// label map at the original size (<see cref="LoadLabelMap"/>), not the one the test resize would carry along.
    /// </summary>
    public ISampleSource ImagesOnly => new ImageSource(this);

    private sealed class ImageSource(SegmentationFolderDataset dataset) : ISampleSource
    {
        public int Count => dataset.Count;
        public DataSample Load(int index) => dataset.LoadImage(index);
    }

    /// <summary>The checked label map alone (with reduce_zero_label applied): what evaluation compares against.</summary>
    public (ushort[] Labels, int Height, int Width) LoadLabelMap(int index)
    {
        if (_labels is null) throw new InvalidOperationException($"segmentation dataset {Options.ImageDir} has no label maps (no annotation folder)");
        var (labels, h, w) = ImageDecoder.ReadLabelMap(_labels[index]);
        int k = ClassNames.Count, ignore = Options.IgnoreIndex;
        if (Options.ReduceZeroLabel)
        {
            // Raw values are 0 (ignored) or 1..K; the ignore value stays ignore (mmseg: 255 − 1 is set back to 255).
            for (int p = 0; p < labels.Length; p++)
            {
                int v = labels[p];
                if (v == 0 || v == ignore) labels[p] = (ushort)ignore;
                else if (v <= k) labels[p] = (ushort)(v - 1);
                else throw OutOfRange(index, p, w, v, $"0..{k} (0 = ignored, with reduce_zero_label) or {ignore}");
            }
        }
        else
        {
            for (int p = 0; p < labels.Length; p++)
            {
                int v = labels[p];
                if (v >= k && v != ignore) throw OutOfRange(index, p, w, v, $"0..{k - 1} or {ignore} (ignore)");
            }
        }
        return (labels, h, w);
    }

    private VimException OutOfRange(int index, int pixel, int width, int value, string expected) =>
        new($"{_labels![index]}: label value {value} at (x={pixel % width}, y={pixel / width}) is out of range; expected {expected} for {ClassNames.Count} classes.");
}
