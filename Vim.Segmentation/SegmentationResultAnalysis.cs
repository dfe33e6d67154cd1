using Vim.Core;
using Vim.Data;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;

namespace Vim.Segmentation;

/// <summary>
/// mmdet's tools/analysis_tools/analyze_results.py for semantic segmentation (`vim eval analyze seg`): each validation
/// image's mIoU from the class-index PNGs `vim test` writes (<see cref="Score"/>), and drawings of the best and worst
/// images, the ground truth's colour overlay beside the prediction's (<see cref="Draw"/>).
/// </summary>
/// <remarks>
/// An image's mIoU is mmseg's IoU metric over that image alone (<see cref="SegmentationMetric"/> fed one image): pixels
/// labelled with the ignore index (after reduce_zero_label) are left out of both maps, and the mean runs over the classes
/// present in the ground truth or the prediction there (a class in neither has IoU 0/0, NaN, left out by nanmean). An
/// image whose pixels are all ignored has no mIoU and is not ranked.
/// </remarks>
public static class SegmentationResultAnalysis
{
    /// <summary>The score's column in the table.</summary>
    public const string ScoreName = "miou";

    /// <summary>The detail columns of <see cref="Score"/>'s images: the classes the mean ran over, and the pixels it counted.</summary>
    public static readonly IReadOnlyList<string> DetailNames = ["classes", "labelled_pixels"];

    /// <summary>
    /// The prediction of each image of <paramref name="dataset"/>: &lt;predictionDir&gt;/NAME.png, NAME the image's path under
    /// the image folder without its extension, as `vim test` names the files of &lt;out&gt;/predictions/pred/.
    /// </summary>
    public static string PredictionPath(SegmentationFolderDataset dataset, string predictionDir, int index) =>
        Path.Combine(predictionDir, SegmentationTester.OutputName(dataset.Options.ImageDir, dataset.ImagePaths[index]) + ".png");

    /// <summary>
    /// Every image of <paramref name="dataset"/>, in its order, with its mIoU against its prediction in
    /// <paramref name="predictionDir"/> (NaN where every pixel is ignored), on every core; a progress line with the time
    /// left goes to <paramref name="progress"/> every few seconds. Refuses, before reading any, images without a
    /// prediction, and then a prediction whose size differs from its label map.
    /// </summary>
    public static IReadOnlyList<ImageScore> Score(SegmentationFolderDataset dataset, string predictionDir, TextWriter? progress)
    {
        if (!Directory.Exists(predictionDir)) throw new VimException($"--pred {predictionDir}: folder not found.");
        int n = dataset.Count, k = dataset.ClassNames.Count, ignore = dataset.IgnoreIndex;
        var missing = Enumerable.Range(0, n).Select(i => PredictionPath(dataset, predictionDir, i)).Where(p => !File.Exists(p)).ToList();
        if (missing.Count > 0)
            throw new VimException($"--pred {predictionDir}: {missing.Count} of the {n} images of {dataset.Options.ImageDir} have no prediction " +
                $"(first: {string.Join(", ", missing.Take(5))}); expected one class-index PNG per image, named as the image, as `vim test` writes them in OUT/predictions/pred/.");
        var scores = new ImageScore[n];
        var progressLines = new ItemProgress(progress, n, "images");
        ParallelErrors.For(n, i =>
        {
            var (labels, height, width) = dataset.LoadLabelMap(i);
            var prediction = ReadPrediction(dataset, predictionDir, i, height, width);
            var metric = new SegmentationMetric(k, ignore);
            metric.Update<ushort>(prediction, labels);
            var result = metric.Compute();
            long labelled = labels.LongCount(l => l != ignore);
            scores[i] = new ImageScore(i, Path.GetRelativePath(dataset.Options.ImageDir, dataset.ImagePaths[i]), result.MIoU,
                [result.IoU.Count(v => !double.IsNaN(v)), labelled]);
            progressLines.Advance();
        });
        progress?.WriteLine($"scored {n} images in {progressLines.Elapsed}");
        return scores;
    }

    /// <summary>An image's prediction, refused when its size is not the label map's.</summary>
    private static ushort[] ReadPrediction(SegmentationFolderDataset dataset, string predictionDir, int index, int height, int width)
    {
        var path = PredictionPath(dataset, predictionDir, index);
        var (prediction, predictionHeight, predictionWidth) = ImageDecoder.ReadLabelMap(path);
        if (predictionHeight != height || predictionWidth != width)
            throw new VimException($"{path}: prediction is {predictionWidth}x{predictionHeight} but the label map of {dataset.ImagePaths[index]} is {width}x{height}; " +
                "expected predictions at the original image size, as `vim test` writes them.");
        return prediction;
    }

    /// <summary>
    /// Draws each of <paramref name="ranking"/>'s best and worst images (<see cref="ImageRanking.Drawings"/>): on the left
    /// the ground truth's colour overlay (ignored pixels left as the image), on the right the prediction's, both by
    /// <see cref="SegmentationVisualizer.Overlay"/> (the palette and blend of `vim test`'s overlays). Returns the paths written.
    /// </summary>
    public static IReadOnlyList<string> Draw(SegmentationFolderDataset dataset, string predictionDir, ImageRanking ranking, string outDir, TextWriter? progress)
    {
        var drawings = ranking.Drawings(outDir);
        var written = new List<string>(drawings.Count);
        var progressLines = new ItemProgress(progress, drawings.Count, "drawings");
        foreach (var (path, image) in drawings)
        {
            // Load checks the image against its label map's size, so both overlays fit the image.
            var sample = dataset.Load(image.Index);
            var prediction = ReadPrediction(dataset, predictionDir, image.Index, sample.Height, sample.Width);
            using var bgr = ImageEncoder.ToBgr(sample.Image, sample.Height, sample.Width);
            using var truth = SegmentationVisualizer.Overlay(bgr, sample.LabelMap!, dataset.IgnoreIndex);
            using var predicted = SegmentationVisualizer.Overlay(bgr, prediction, ignoreIndex: null);
            ImageEncoder.WritePngSideBySide(path, truth, predicted);
            written.Add(path);
            progressLines.Advance();
        }
        return written;
    }
}
