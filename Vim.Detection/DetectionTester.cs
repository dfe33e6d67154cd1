using Vim.Core.Engine;
using System.Text.Json;
using Vim.Core.Checkpoints;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Core.IO;

namespace Vim.Detection;

/// <summary>What `vim test` does for detection: load a checkpoint, evaluate box and mask AP, write COCO results, metrics and reports.</summary>
public static class DetectionTester
{
    public static (CocoSummary Box, CocoSummary? Mask) Run(DetectionTask task, string checkpoint, string outDir, bool ema)
    {
        // Loaded first: a checkpoint that does not fit leaves no output folder behind.
        TrainingCheckpoint.LoadWeights(task.Model, checkpoint, ema);
        Directory.CreateDirectory(outDir);
        var (box, mask, detections) = task.EvaluateFull();
        CocoResults.Save(Path.Combine(outDir, "results.json"), detections);
        var metricsPath = Path.Combine(outDir, "metrics.json");
        AtomicFile.WriteText(metricsPath, JsonSerializer.Serialize(DetectionTask.Metrics((box, mask, detections)), MetricJson.Indented));
        CocoReport.Write(box, Path.Combine(outDir, "bbox"), $"Box AP: {Path.GetFileName(checkpoint)}");
        if (mask is not null) CocoReport.Write(mask, Path.Combine(outDir, "segm"), $"Mask AP: {Path.GetFileName(checkpoint)}");
        return (box, mask);
    }
}
