using Vim.Core;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;

namespace Vim.Data.Statistics;

/// <summary>One class of a segmentation split.</summary>
/// <param name="PixelShare">Of the labelled (not ignored) pixels of the split; NaN when it has none.</param>
/// <param name="Images">Images with at least one pixel of the class.</param>
/// <param name="ImageShare">Of the split's images.</param>
public sealed record SegmentationClassStatistics(int Index, string Name, long Pixels, double PixelShare, int Images, double ImageShare);

/// <summary>
/// What a segmentation split's label maps hold (mmseg's class frequencies; ADE20k's long tail of 150 classes): per class
/// the pixel share and the images it appears in, the ignored share, image sizes. Label maps are read as training reads
/// them (<see cref="SegmentationFolderDataset.LoadLabelMap"/>: reduce_zero_label applied, the ignore index kept, values
/// outside the classes refused naming the file). Image sizes are the label maps' sizes: loading a sample refuses a pair
/// whose sizes differ (<c>vim data check --decode -1</c> checks every pair), and decoding every image would double the cost.
/// </summary>
/// <param name="IgnoredPixels">Pixels equal to the ignore index after reduce_zero_label (with it: ADE20k's label 0, "other").</param>
/// <param name="IgnoredShare">Of all pixels.</param>
public sealed record SegmentationDatasetStatistics(
    string ImageDir, string AnnotationDir, int Images, bool ReduceZeroLabel, int IgnoreIndex,
    long Pixels, long LabelledPixels, long IgnoredPixels, double IgnoredShare,
    ValueSummary ImageWidth, ValueSummary ImageHeight, IReadOnlyList<ImageSizeCount> ImageSizes,
    IReadOnlyList<SegmentationClassStatistics> Classes)
{
    /// <summary>Classes with no pixel in the split.</summary>
    public int AbsentClasses => Classes.Count(c => c.Pixels == 0);

    /// <summary>
    /// Reads every label map of <paramref name="dataset"/>, streamed, on up to <paramref name="threads"/> threads
    /// (the counts are integer sums, so the result does not depend on the order the images finish in); every
    /// <paramref name="progressSeconds"/> a line with the images done and the time left goes to <paramref name="progress"/>.
    /// </summary>
    public static SegmentationDatasetStatistics Compute(SegmentationFolderDataset dataset, TextWriter? progress = null, int threads = -1,
        double progressSeconds = 5)
    {
        if (dataset.Options.AnnotationDir is null)
            throw new VimException($"segmentation dataset {dataset.Options.ImageDir}: has no annotation folder; statistics need the label maps.");
        int k = dataset.ClassNames.Count, n = dataset.Count, ignore = dataset.IgnoreIndex;
        var pixels = new long[k];
        var images = new int[k];
        long ignored = 0;
        var widths = new int[n];
        var heights = new int[n];
        var progressLines = new ItemProgress(progress, n, "label maps", progressSeconds);
        ParallelErrors.For(n, () => new ClassCounts(k), (i, local) =>
        {
            var (labels, h, w) = dataset.LoadLabelMap(i);
            widths[i] = w;
            heights[i] = h;
            local.Add(labels, ignore);
            progressLines.Advance();
            return local;
        }, local =>
        {
            lock (pixels)
            {
                for (int c = 0; c < k; c++)
                {
                    pixels[c] += local.Pixels[c];
                    images[c] += local.Images[c];
                }
                ignored += local.Ignored;
            }
        }, threads > 0 ? threads : Environment.ProcessorCount);
        progress?.WriteLine($"read {n} label maps in {progressLines.Elapsed}");
        long labelled = pixels.Sum();
        long total = labelled + ignored;
        var classes = Enumerable.Range(0, k).Select(c => new SegmentationClassStatistics(c, dataset.ClassNames[c], pixels[c],
            labelled > 0 ? (double)pixels[c] / labelled : double.NaN, images[c], (double)images[c] / n)).ToArray();
        return new SegmentationDatasetStatistics(dataset.Options.ImageDir, dataset.Options.AnnotationDir, n, dataset.Options.ReduceZeroLabel, ignore,
            total, labelled, ignored, total > 0 ? (double)ignored / total : double.NaN,
            ValueSummary.Of(widths.Select(w => (double)w)), ValueSummary.Of(heights.Select(h => (double)h)),
            ImageSizeCount.Tally(Enumerable.Range(0, n).Select(i => (widths[i], heights[i]))), classes);
    }

    /// <summary>One thread's counts: pixels per class, images per class, ignored pixels.</summary>
    private sealed class ClassCounts(int classes)
    {
        public long[] Pixels { get; } = new long[classes];
        public int[] Images { get; } = new int[classes];
        public long Ignored { get; private set; }

        private readonly long[] _image = new long[classes];

        /// <summary>Adds one checked label map: every value is a class index or the ignore index.</summary>
        public void Add(ushort[] labels, int ignore)
        {
            Array.Clear(_image);
            long ignoredHere = 0;
            foreach (ushort v in labels)
            {
                if (v == ignore) ignoredHere++;
                else _image[v]++;
            }
            Ignored += ignoredHere;
            for (int c = 0; c < _image.Length; c++)
            {
                Pixels[c] += _image[c];
                if (_image[c] > 0) Images[c]++;
            }
        }
    }
}
