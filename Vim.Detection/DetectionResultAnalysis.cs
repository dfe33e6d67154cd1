using System.Globalization;
using Vim.Core;
using Vim.Data;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// mmdet's tools/analysis_tools/analyze_results.py for a COCO results file (`vim eval analyze det`): each image's AP
/// (<see cref="Score"/>), and drawings of the best and worst images with the ground truth beside the detections
/// (<see cref="Draw"/>).
/// </summary>
/// <remarks>
/// mmdet's tool scores an image with eval_map (VOC-style area under the precision-recall curve, boxes only, crowds as
/// ground truth) averaged over IoU .50:.95, and gives an image without ground truth 0 (eval_map's mean over no class),
/// so such images, with or without detections, fill the worst list. Here an image's score is COCO's own AP restricted
/// to it (bbox or segm: <see cref="CocoEvaluator.ImageAps"/>), which leaves crowds and categories absent from the
/// image out as COCOeval does; an image without non-crowd ground truth has no AP and is not ranked (the table keeps it,
/// with its detections counted).
/// </remarks>
public static class DetectionResultAnalysis
{
    /// <summary>The score's column in the table.</summary>
    public static string ScoreName(CocoIouType iouType) => iouType == CocoIouType.Segm ? "segm_ap" : "bbox_ap";

    /// <summary>The detail columns of <see cref="Score"/>'s images.</summary>
    public static readonly IReadOnlyList<string> DetailNames = ["ground_truths", "crowd_regions", "detections", "detections_drawn"];

    /// <summary>
    /// Every image of the ground truth, in its file order (the order ties are ranked in), with its COCO AP (NaN without
    /// non-crowd ground truth) and its ground truths, crowd regions, detections and detections scoring at least
    /// <paramref name="scoreThreshold"/> (those drawn). One evaluation of all images: no image is evaluated twice.
    /// </summary>
    /// <param name="groundTruthSource">Names the ground truth in errors (its file).</param>
    /// <param name="resultsSource">Names the detections in errors (the results file).</param>
    public static IReadOnlyList<ImageScore> Score(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, CocoIouType iouType,
        double scoreThreshold, string groundTruthSource, string resultsSource)
    {
        // The drawings could not place an unknown image, nor name an unknown category.
        CocoResults.RequireOf(groundTruth, detections, groundTruthSource, resultsSource);
        CocoEvaluator evaluator;
        double[] aps;
        try
        {
            evaluator = new CocoEvaluator(groundTruth, detections, iouType);
            evaluator.Evaluate();
            aps = evaluator.ImageAps();
        }
        catch (VimException e)
        {
            // The evaluator names the entry (results[i], a ground-truth annotation id); the files are named here.
            throw new VimException($"{resultsSource} against {groundTruthSource}: {e.Message}", e);
        }
        var apById = new Dictionary<long, double>(aps.Length);
        for (int i = 0; i < aps.Length; i++) apById[evaluator.ImageIds[i]] = aps[i];

        var truths = new Dictionary<long, (long Objects, long Crowds)>();
        foreach (var a in groundTruth.Annotations)
        {
            var (objects, crowds) = truths.GetValueOrDefault(a.ImageId);
            truths[a.ImageId] = a.IsCrowd ? (objects, crowds + 1) : (objects + 1, crowds);
        }
        var found = new Dictionary<long, (long All, long Drawn)>();
        foreach (var d in detections)
        {
            var (all, drawn) = found.GetValueOrDefault(d.ImageId);
            found[d.ImageId] = (all + 1, d.Score >= scoreThreshold ? drawn + 1 : drawn);
        }
        return groundTruth.Images.Select((image, index) =>
        {
            var (objects, crowds) = truths.GetValueOrDefault(image.Id);
            var (all, drawn) = found.GetValueOrDefault(image.Id);
            return new ImageScore(index, image.FileName ?? image.Id.ToString(CultureInfo.InvariantCulture), apById[image.Id], [objects, crowds, all, drawn]);
        }).ToList();
    }

    /// <summary>
    /// Draws each of <paramref name="ranking"/>'s best and worst images (<see cref="ImageRanking.Drawings"/>): on the left
    /// the ground truth (<see cref="DetectionVisualizer.DrawGroundTruth"/>: crowd regions in their own style), on the
    /// right the detections scoring at least <paramref name="scoreThreshold"/> (<see cref="DetectionVisualizer.Draw"/>),
    /// each with masks when <paramref name="withMasks"/> (segm analysis; a detection without a mask as its box alone) and
    /// boxes alone otherwise. The images are read
    /// from <paramref name="dataset"/>'s image folder, which must hold every image drawn (refused before any is drawn).
    /// Returns the paths written.
    /// </summary>
    /// <param name="dataset">The ground truth the scores were computed on, as samples (every image kept, in file order).</param>
    public static IReadOnlyList<string> Draw(CocoInstanceDataset dataset, IReadOnlyList<CocoDetection> detections, ImageRanking ranking, string outDir,
        double scoreThreshold, bool withMasks, string resultsSource, TextWriter? progress)
    {
        RequireImages(dataset, ranking);
        var drawings = ranking.Drawings(outDir);

        var byImage = new Dictionary<long, List<(CocoDetection Detection, int Index)>>();
        for (int d = 0; d < detections.Count; d++)
        {
            if (detections[d].Score < scoreThreshold) continue;
            if (!byImage.TryGetValue(detections[d].ImageId, out var list)) byImage[detections[d].ImageId] = list = [];
            list.Add((detections[d], d));
        }
        var names = dataset.Categories.Names;
        var written = new List<string>(drawings.Count);
        var progressLines = new ItemProgress(progress, drawings.Count, "drawings");
        foreach (var (path, image) in drawings)
        {
            using var scope = NewDisposeScope();
            var sample = dataset.Load(image.Index);
            using var truth = ImageEncoder.ToBgr(sample.Image, sample.Height, sample.Width);
            using var predicted = truth.Clone();
            DetectionVisualizer.DrawGroundTruth(truth, sample, names);
            var found = byImage.GetValueOrDefault(sample.ImageId) ?? [];
            DetectionVisualizer.Draw(predicted, ToInstances(found, sample.Height, sample.Width, dataset.Categories, withMasks, resultsSource), names, scoreThreshold);
            ImageEncoder.WritePngSideBySide(path, truth, predicted);
            written.Add(path);
            progressLines.Advance();
        }
        return written;
    }

    /// <summary>
    /// Refuses a ranking whose best or worst images are not files in <paramref name="dataset"/>'s image folder (the
    /// count and the first five file_names), and a dataset that does not keep every image of the json in its order (the
    /// scores index the json's images).
    /// </summary>
    public static void RequireImages(CocoInstanceDataset dataset, ImageRanking ranking)
    {
        if (dataset.Options.SkipImagesWithoutAnnotations)
            throw new ArgumentException("the analysis draws every image of the json by its index: build the dataset with every image kept.", nameof(dataset));
        var images = ranking.Best.Concat(ranking.Worst).Select(i => dataset.Images[i.Index]).ToList();
        var missing = CocoInstanceDataset.MissingImageFiles(images, dataset.ImageRoot);
        if (missing.Count > 0)
            throw new VimException($"--images {dataset.ImageRoot}: {missing.Count} of the {images.Count} images to draw are not in this folder " +
                $"(first: {string.Join(", ", missing.Take(5).Select(i => i.FileName))}); expected the folder the ground truth's file_names are relative to.");
    }

    /// <summary>
    /// Detections of one image as instances to draw: xyxy boxes (a segm-only entry's from its mask, as loadRes computes
    /// it), class indices and scores; masks at the image size when asked (empty for a detection without one).
    /// </summary>
    internal static Instances ToInstances(List<(CocoDetection Detection, int Index)> found, int height, int width, CategoryMap categories,
        bool withMasks, string resultsSource)
    {
        int n = found.Count;
        var boxes = new double[4 * n];
        var classes = new long[n];
        var scores = new double[n];
        // A detection without a mask (a results file may mix them) gets an empty one: it is drawn as its box alone.
        bool masks = withMasks && found.Any(f => f.Detection.Segmentation is not null);
        var pixels = masks ? new byte[(long)n * height * width] : null;
        for (int i = 0; i < n; i++)
        {
            var (det, index) = found[i];
            Vim.Data.Masks.Rle? rle = null;
            if (det.Segmentation is not null && (masks || det.Bbox is null))
            {
                try
                {
                    rle = det.Segmentation.ToRle(height, width);
                }
                catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
                {
                    throw new VimException($"{resultsSource}: [{index}]: bad \"segmentation\" for image {det.ImageId} ({e.Message}).", e);
                }
                if (rle.Height != height || rle.Width != width)
                    throw new VimException($"{resultsSource}: [{index}]: mask size {rle.Height}x{rle.Width} differs from image {det.ImageId} ({height}x{width}).");
            }
            var box = det.Bbox ?? rle?.ToBbox() ?? throw new VimException($"{resultsSource}: [{index}]: neither \"bbox\" nor \"segmentation\"; nothing to draw.");
            (boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]) = (box[0], box[1], box[0] + box[2], box[1] + box[3]);
            classes[i] = categories.ToClassIndex(det.CategoryId);
            scores[i] = det.Score;
            if (pixels is not null && rle is not null) rle.Decode().CopyTo(pixels, (long)i * height * width);
        }
        // Detections read from a results file are host data, drawn on the host.
        return new Instances(height, width, new Boxes(tensor(boxes, device: CPU).view(n, 4)), tensor(classes, device: CPU), tensor(scores, device: CPU),
            pixels is null ? null : tensor(pixels, device: CPU).view(n, height, width));
    }
}
