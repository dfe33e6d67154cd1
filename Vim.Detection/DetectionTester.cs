using TorchSharp;
using Vim.Core.Engine;
using System.Text.Json;
using Vim.Core.Checkpoints;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Core.IO;

namespace Vim.Detection;

/// <summary>
/// What `vim test` does for detection: load a checkpoint, evaluate box and mask AP, write COCO results, metrics, reports,
/// the box confusion matrix (mmdet's defaults: score ≥ 0.3, IoU ≥ 0.5, no extra NMS) and, when asked, the error analysis
/// (bbox/errors/, segm/errors/).
/// </summary>
public static class DetectionTester
{
    /// <summary>The error analysis's folder inside bbox/ and segm/.</summary>
    public const string ErrorsFolder = "errors";

    /// <param name="overlays">How many validation images holding an object also get their detections drawn (overlays/).</param>
    /// <param name="errorAnalysis">Also run <see cref="CocoErrorAnalysis"/> on the boxes (and masks), linked from each summary.</param>
    /// <param name="progress">Where the error analysis reports its progress.</param>
    public static (CocoSummary Box, CocoSummary? Mask) Run(DetectionTask task, string checkpoint, string outDir, bool ema, int overlays = 0,
        double overlayThreshold = 0.3, bool errorAnalysis = false, TextWriter? progress = null)
    {
        // Loaded first: a checkpoint that does not fit leaves no output folder behind.
        TrainingCheckpoint.LoadWeights(task.Model, checkpoint, ema);
        Directory.CreateDirectory(outDir);
        var (box, mask, detections) = task.EvaluateFull();
        CocoResults.Save(Path.Combine(outDir, "results.json"), detections);
        var metricsPath = Path.Combine(outDir, "metrics.json");
        AtomicFile.WriteText(metricsPath, JsonSerializer.Serialize(DetectionTask.Metrics((box, mask)), MetricJson.Indented));
        // mmdet's defaults; the matrix is over boxes, so box AP's summary links it.
        var settings = new DetectionConfusionSettings();
        var matrix = DetectionConfusion.Compute(task.ValSet.Coco, detections, settings, task.ValSet.AnnotationSource, "the detections");
        var confusion = ConfusionMatrixReport.Write(matrix, outDir, $"Boxes: {Path.GetFileName(checkpoint)}: confusion matrix");
        var boxDir = Path.Combine(outDir, "bbox");
        string boxTitle = $"Box AP: {Path.GetFileName(checkpoint)}";
        string boxErrors = errorAnalysis ? ErrorSection(task, detections, CocoIouType.Bbox, boxDir, boxTitle, progress) : "";
        CocoReport.Write(box, boxDir, boxTitle, ConfusionMatrixReport.Markdown(boxDir, confusion, settings.Describe()) + boxErrors);
        if (mask is not null)
        {
            var maskDir = Path.Combine(outDir, "segm");
            string maskTitle = $"Mask AP: {Path.GetFileName(checkpoint)}";
            // Masks as their AP reads them (DetectionTask.EvaluateMasks), so C75 and C50 are that AP's numbers.
            string maskErrors = errorAnalysis ? ErrorSection(task, DetectionTask.AsMaskResults(detections), CocoIouType.Segm, maskDir, maskTitle, progress) : "";
            CocoReport.Write(mask, maskDir, maskTitle, maskErrors);
        }
        WriteOverlays(task, Path.Combine(outDir, "overlays"), overlays, overlayThreshold);
        return (box, mask);
    }

    /// <summary>Runs the error analysis into <paramref name="summaryDir"/>/errors; returns the summary's section linking it.</summary>
    private static string ErrorSection(DetectionTask task, IReadOnlyList<CocoDetection> detections, CocoIouType iouType, string summaryDir,
        string title, TextWriter? progress)
    {
        var analysis = CocoErrorAnalysis.Run(task.ValSet.Coco, detections, iouType, progress: progress);
        var errorsDir = Path.Combine(summaryDir, ErrorsFolder);
        CocoErrorReport.Write(analysis, errorsDir, title);
        return CocoErrorReport.LinkSection(summaryDir, errorsDir, analysis);
    }

    /// <summary>
    /// Draws the detections (boxes, masks, class and score ≥ <paramref name="scoreThreshold"/>) of the first
    /// <paramref name="count"/> validation images that hold a non-crowd object, predicted at the test size, as
    /// &lt;dir&gt;/NAME.png; returns the files written.
    /// </summary>
    public static IReadOnlyList<string> WriteOverlays(DetectionTask task, string dir, int count, double scoreThreshold)
    {
        var written = new List<string>();
        if (count <= 0) return written;
        var withObjects = task.ValSet.Coco.Annotations.Where(a => !a.IsCrowd).Select(a => a.ImageId).ToHashSet();
        foreach (var image in task.ValSet.Images.Where(i => withObjects.Contains(i.Id)).Take(count))
        {
            using var scope = torch.NewDisposeScope();
            var imagePath = task.ValSet.ImagePath(image);
            var found = DetectionInference.Predict(task.Detector, imagePath, task.TestSize);
            var overlay = Path.Combine(dir, Path.ChangeExtension(image.FileName!, ".png"));
            DetectionVisualizer.WriteOverlay(imagePath, found, task.ValSet.Categories.Names, scoreThreshold, overlay);
            written.Add(overlay);
        }
        return written;
    }
}
