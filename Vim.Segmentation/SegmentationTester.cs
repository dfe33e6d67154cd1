using Vim.Core;
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

    /// <summary>The test-server PNGs' folder inside `vim test --format-only`'s output folder.</summary>
    public const string SubmissionFolder = "submission";

    /// <summary>The zip of <see cref="SubmissionFolder"/>'s PNGs (at the archive's top level): what the ADE20k server takes.</summary>
    public const string SubmissionArchive = "submission.zip";

    /// <summary>
    /// `vim test --format-only` for segmentation (mmseg's IoUMetric(format_only=True)): predicts every image of
    /// &lt;data.root&gt;/images/&lt;split&gt; (no labels read) and writes one 8-bit PNG per image into
    /// &lt;outDir&gt;/submission/ (<see cref="SegmentationVisualizer.WriteSubmission"/>: class index + 1 with
    /// reduce_zero_label), the same PNGs zipped as &lt;outDir&gt;/submission.zip, and colour overlays of the first
    /// <paramref name="overlays"/> images in &lt;outDir&gt;/overlays/. Nothing is evaluated. Returns the number of images.
    /// </summary>
    public static int FormatOnly(SegmentationTask task, string checkpoint, string split, string outDir, int overlays, bool ema, TextWriter progress)
    {
        var images = task.Data.UnlabelledSplit(split);
        bool reduceZeroLabel = images.Options.ReduceZeroLabel;
        if (task.ClassNames.Count > SegmentationVisualizer.MaxSubmissionClasses(reduceZeroLabel))
            throw new VimException($"--format-only: model.num_classes is {task.ClassNames.Count}, but submission PNGs are 8-bit (as the ADE20k server and mmseg write them): " +
                $"at most {SegmentationVisualizer.MaxSubmissionClasses(reduceZeroLabel)} classes with data.reduce_zero_label: {reduceZeroLabel.ToString().ToLowerInvariant()}.");
        // Loaded first: a checkpoint that does not fit leaves no output folder behind.
        TrainingCheckpoint.LoadWeights(task.Model, checkpoint, ema);
        Directory.CreateDirectory(outDir);
        var submissionDir = Path.Combine(outDir, SubmissionFolder);
        var written = new List<(string EntryName, string File)>(images.Count);
        int reportEvery = Math.Max(1, images.Count / 20);
        progress.WriteLine($"format-only: predicting {images.Count} images of {images.Options.ImageDir}");
        task.PredictEach(images, (meta, prediction) =>
        {
            int index = (int)meta.ImageId;
            var imagePath = images.ImagePaths[index];
            var name = OutputName(images.Options.ImageDir, imagePath);
            var file = Path.Combine(submissionDir, name + ".png");
            SegmentationVisualizer.WriteSubmission(file, prediction, meta.OriginalHeight, meta.OriginalWidth, reduceZeroLabel);
            written.Add((name.Replace(Path.DirectorySeparatorChar, '/') + ".png", file));
            if (index < overlays)
                SegmentationVisualizer.WriteOverlay(Path.Combine(outDir, "overlays", name + ".png"), imagePath, prediction, meta.OriginalHeight, meta.OriginalWidth);
            if (written.Count % reportEvery == 0 || written.Count == images.Count) progress.WriteLine($"format-only: {written.Count}/{images.Count} images");
        });
        ZipFolder.Write(Path.Combine(outDir, SubmissionArchive), written);
        return written.Count;
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
