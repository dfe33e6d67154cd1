using Vim.Core;
using Vim.Core.Engine;
using System.Text.Json;
using Vim.Core.Checkpoints;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Core.IO;
using System.IO.Compression;
using System.Runtime.InteropServices;
using Vim.Core.Distributed;
using Vim.Data.Datasets;

namespace Vim.Segmentation;

/// <summary>What `vim test` does for segmentation: load a checkpoint, evaluate, write predictions, metrics and a report.</summary>
public static class SegmentationTester
{
    /// <param name="overlays">How many validation images also get a colour overlay.</param>
    /// <param name="ema">Evaluate the checkpoint's EMA weights instead of the trained ones.</param>
    /// <remarks>Over K ranks (<see cref="SegmentationTask.Communicator"/>) each predicts the images i with i mod K = rank, the
    /// confusion counts are summed (every rank returns the single-process result) and rank 0 alone writes: the other ranks'
    /// predictions come to it (<see cref="RootRelay{T}"/>) and it writes them as one process would.</remarks>
    public static SegmentationResult Run(SegmentationTask task, string checkpoint, string outDir, int overlays, bool ema)
    {
        // Loaded first: a checkpoint that does not fit leaves no output folder behind.
        TrainingCheckpoint.LoadWeights(task.Model, checkpoint, ema);
        bool root = task.Communicator.IsRoot();
        if (root) Directory.CreateDirectory(outDir);
        var predictions = ToRoot(task.Communicator, task.ValSet.Count, (index, map) =>
        {
            var image = task.ValSet.ImagePaths[index];
            SegmentationVisualizer.Write(Path.Combine(outDir, "predictions"), OutputName(task.ValSet.Options.ImageDir, image), map.Labels, map.Height, map.Width,
                index < overlays ? image : null);
        });
        var counts = task.EvaluateCounts((index, prediction, height, width) => predictions.Add(index, new LabelMap(prediction, height, width)));
        predictions.Finish();
        var result = counts.Compute();
        if (!root) return result;
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
    /// <paramref name="overlays"/> images in &lt;outDir&gt;/overlays/. Nothing is evaluated. Returns the number of images. Over K ranks
    /// (<see cref="SegmentationTask.Communicator"/>) each predicts the images i with i mod K = rank and rank 0 writes every file.
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
        var communicator = task.Communicator;
        bool root = communicator.IsRoot();
        if (root) Directory.CreateDirectory(outDir);
        var submissionDir = Path.Combine(outDir, SubmissionFolder);
        var written = new List<(string EntryName, string File)>(images.Count);
        int reportEvery = Math.Max(1, images.Count / 20);
        progress.WriteLine($"format-only: predicting {images.Count} images of {images.Options.ImageDir}" +
            (communicator.WorldSize > 1 ? $" over {communicator.WorldSize} processes" : ""));
        var predictions = ToRoot(communicator, images.Count, (index, map) =>
        {
            var imagePath = images.ImagePaths[index];
            var name = OutputName(images.Options.ImageDir, imagePath);
            var file = Path.Combine(submissionDir, name + ".png");
            SegmentationVisualizer.WriteSubmission(file, map.Labels, map.Height, map.Width, reduceZeroLabel);
            written.Add((name.Replace(Path.DirectorySeparatorChar, '/') + ".png", file));
            if (index < overlays)
                SegmentationVisualizer.WriteOverlay(Path.Combine(outDir, "overlays", name + ".png"), imagePath, map.Labels, map.Height, map.Width);
            if (written.Count % reportEvery == 0 || written.Count == images.Count) progress.WriteLine($"format-only: {written.Count}/{images.Count} images");
        });
        task.PredictEach(new StridedSubset(images, communicator.Rank, communicator.WorldSize),
            (meta, prediction) => predictions.Add((int)meta.ImageId, new LabelMap(prediction, meta.OriginalHeight, meta.OriginalWidth)));
        predictions.Finish();
        if (root) ZipFolder.Write(Path.Combine(outDir, SubmissionArchive), written);
        return images.Count;
    }

    /// <summary>A predicted label map: row-major class indices at the image's original size.</summary>
    private sealed record LabelMap(ushort[] Labels, int Height, int Width);

    /// <summary>
    /// Brings every rank's predictions of a strided pass over <paramref name="images"/> images to rank 0's
    /// <paramref name="write"/>, in image order (in one process: as each is predicted).
    /// </summary>
    private static RootRelay<LabelMap> ToRoot(ICommunicator communicator, int images, Action<int, LabelMap> write) =>
        new(communicator, images, EncodeLabelMap, DecodeLabelMap, write);

    /// <summary>A label map as it travels between ranks: its size, then its class indices zlib-compressed (mostly long runs of one class).</summary>
    private static byte[] EncodeLabelMap(LabelMap map)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(map.Height);
            writer.Write(map.Width);
        }
        using (var compressed = new ZLibStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
            compressed.Write(MemoryMarshal.AsBytes(map.Labels.AsSpan()));
        return buffer.ToArray();
    }

    private static LabelMap DecodeLabelMap(byte[] bytes)
    {
        using var buffer = new MemoryStream(bytes);
        using var reader = new BinaryReader(buffer);
        int height = reader.ReadInt32(), width = reader.ReadInt32();
        var labels = new ushort[height * width];
        using var decompressed = new ZLibStream(buffer, CompressionMode.Decompress);
        decompressed.ReadExactly(MemoryMarshal.AsBytes(labels.AsSpan()));
        return new LabelMap(labels, height, width);
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
