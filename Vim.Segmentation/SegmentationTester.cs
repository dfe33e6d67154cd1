using Vim.Core.Engine;
using System.Text.Json;
using Vim.Core.Checkpoints;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Core.IO;

namespace Vim.Segmentation;

/// <summary>What `vim test` does for segmentation: load a checkpoint, evaluate, write predictions, metrics and a report.</summary>
public static class SegmentationTester
{
    /// <param name="overlays">How many validation images also get a colour overlay.</param>
    /// <param name="ema">Evaluate the checkpoint's EMA weights instead of the trained ones.</param>
    public static SegmentationResult Run(SegmentationTask task, string checkpoint, string outDir, int overlays, bool ema)
    {
        // Loaded first: a checkpoint that does not fit leaves no output folder behind.
        TrainingCheckpoint.LoadWeights(task.Model, checkpoint, ema);
        Directory.CreateDirectory(outDir);
        var counts = task.EvaluateCounts((index, prediction, height, width) =>
        {
            var image = task.ValSet.ImagePaths[index];
            SegmentationVisualizer.Write(Path.Combine(outDir, "predictions"), OutputName(task.ValSet.Options.ImageDir, image), prediction, height, width,
                index < overlays ? image : null);
        });
        var result = counts.Compute();
        var json = JsonSerializer.Serialize(SegmentationTask.Metrics(result), MetricJson.Indented);
        var metricsPath = Path.Combine(outDir, "metrics.json");
        AtomicFile.WriteText(metricsPath, json);
        var title = $"Segmentation: {Path.GetFileName(checkpoint)}";
        // The counts behind the mIoU just computed: the matrix needs no second pass over the predictions.
        var confusion = ConfusionMatrixReport.Write(counts.ToConfusionMatrix(task.ClassNames), outDir, $"{title}: confusion matrix");
        SegmentationReport.Write(result, task.ClassNames, outDir, title,
            ConfusionMatrixReport.Markdown(outDir, confusion, ConfusionMatrixReport.SegmentationRule(task.ValSet.IgnoreIndex, task.ValSet.Options.ReduceZeroLabel)));
        return result;
    }

    /// <summary>
    /// An image's path under the image folder, without its extension: scene1/0001 and scene2/0001 are two images (the
    /// dataset pairs labels by this path), so their predictions must not overwrite each other.
    /// </summary>
    public static string OutputName(string imageDir, string imagePath)
    {
        var relative = Path.GetRelativePath(imageDir, imagePath);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative)
            ? Path.GetFileNameWithoutExtension(imagePath)
            : Path.ChangeExtension(relative, null);
    }
}
