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
/// What `vim test` does for detection: load a checkpoint, evaluate box and mask AP, write COCO results, metrics, reports
/// and the box confusion matrix (mmdet's defaults: score ≥ 0.3, IoU ≥ 0.5, no extra NMS).
/// </summary>
public static class DetectionTester
{
    /// <param name="overlays">How many validation images holding an object also get their detections drawn (overlays/).</param>
    public static (CocoSummary Box, CocoSummary? Mask) Run(DetectionTask task, string checkpoint, string outDir, bool ema, int overlays = 0,
        double overlayThreshold = 0.3)
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
        CocoReport.Write(box, boxDir, $"Box AP: {Path.GetFileName(checkpoint)}", ConfusionMatrixReport.Markdown(boxDir, confusion, settings.Describe()));
        if (mask is not null) CocoReport.Write(mask, Path.Combine(outDir, "segm"), $"Mask AP: {Path.GetFileName(checkpoint)}");
        WriteOverlays(task, Path.Combine(outDir, "overlays"), overlays, overlayThreshold);
        return (box, mask);
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
