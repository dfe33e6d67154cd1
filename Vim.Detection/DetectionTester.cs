using TorchSharp;
using Vim.Core.Engine;
using System.Text.Json;
using Vim.Core.Checkpoints;
using Vim.Core.Distributed;
using Vim.Data.Coco;
using Vim.Data.Datasets;
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
    /// <param name="proposals">Also evaluate the RPN's proposals of the same forwards (<see cref="ProposalRecall"/>, mmdet's proposal
    /// metric): proposals.json, the proposal_AR items in metrics.json and a section of bbox/summary.md. Needs a plain test pass.</param>
    /// <returns>Box AP, mask AP where the model has masks, and the proposal recall when asked for; null on the ranks other than 0
    /// of a job (<see cref="DetectionTask.Communicator"/>), which predict their share of the images and write nothing.</returns>
    /// <remarks>Over K ranks each predicts the images i with i mod K = rank; rank 0 receives every detection in dataset order
    /// (<see cref="DetectionTask.PredictValidation"/>), so its files and numbers are those of one process.</remarks>
    public static (CocoSummary Box, CocoSummary? Mask, CocoSummary? Proposals)? Run(DetectionTask task, string checkpoint, string outDir, bool ema,
        int overlays = 0, double overlayThreshold = 0.3, bool errorAnalysis = false, TextWriter? progress = null, bool proposals = false)
    {
        // Before the checkpoint is read: a refused combination costs nothing.
        if (proposals) DetectionTask.RequirePlainTestPass(task.TestAugmentation);
        // Loaded first: a checkpoint that does not fit leaves no output folder behind.
        TrainingCheckpoint.LoadWeights(task.Model, checkpoint, ema);
        bool root = task.Communicator.IsRoot();
        if (root) Directory.CreateDirectory(outDir);
        IReadOnlyList<CocoDetection> detections;
        IReadOnlyList<CocoDetection>? proposed = null;
        if (proposals) (detections, proposed) = task.PredictValidationWithProposals();
        else detections = task.PredictValidation();
        if (!root) return null;
        // The error analysis of the masks reads the masks mask AP has converted: each ground-truth polygon is rasterised once.
        var masks = errorAnalysis ? new CocoMaskCache() : null;
        var (box, mask) = task.Score(detections, masks);
        var resultsPath = Path.Combine(outDir, ResultsFile);
        CocoResults.Save(resultsPath, detections);
        var metrics = new Dictionary<string, double>(DetectionTask.Metrics((box, mask)));
        CocoSummary? recall = null;
        string recallSection = "";
        if (proposed is not null)
        {
            var proposalsPath = Path.Combine(outDir, ProposalsFile);
            CocoResults.Save(proposalsPath, proposed);
            recall = ProposalRecall.Evaluate(task.ValSet.Coco, proposed);
            foreach (var (name, value) in ProposalRecall.Metrics(recall)) metrics[name] = value;
            recallSection = ProposalRecallReport.Markdown(recall, Path.Combine(outDir, "bbox"), proposalsPath, task.ProposalsPerImage);
        }
        var metricsPath = Path.Combine(outDir, "metrics.json");
        AtomicFile.WriteText(metricsPath, JsonSerializer.Serialize(metrics, MetricJson.Indented));
        // mmdet's defaults; the matrix is over boxes, so box AP's summary links it.
        var settings = new DetectionConfusionSettings();
        var matrix = DetectionConfusion.Compute(task.ValSet.Coco, detections, settings, task.ValSet.AnnotationSource, resultsPath);
        var confusion = ConfusionMatrixReport.Write(matrix, outDir, $"Boxes: {Path.GetFileName(checkpoint)}: confusion matrix");
        var boxDir = Path.Combine(outDir, "bbox");
        string boxTitle = $"Box AP: {Path.GetFileName(checkpoint)}";
        string boxErrors = errorAnalysis ? ErrorSection(task, detections, CocoIouType.Bbox, boxDir, boxTitle, progress) : "";
        CocoReport.Write(box, boxDir, boxTitle, recallSection + ConfusionMatrixReport.Markdown(boxDir, confusion, settings.Describe()) + boxErrors);
        if (mask is not null)
        {
            var maskDir = Path.Combine(outDir, "segm");
            string maskTitle = $"Mask AP: {Path.GetFileName(checkpoint)}";
            // Masks as their AP reads them (DetectionTask.EvaluateMasks), so C75 and C50 are that AP's numbers.
            string maskErrors = errorAnalysis ? ErrorSection(task, DetectionTask.AsMaskResults(detections), CocoIouType.Segm, maskDir, maskTitle, progress, masks) : "";
            CocoReport.Write(mask, maskDir, maskTitle, maskErrors);
        }
        WriteOverlays(task, Path.Combine(outDir, "overlays"), overlays, overlayThreshold, detections);
        return (box, mask, recall);
    }

    /// <summary>Runs the error analysis into <paramref name="summaryDir"/>/errors; returns the summary's section linking it.</summary>
    private static string ErrorSection(DetectionTask task, IReadOnlyList<CocoDetection> detections, CocoIouType iouType, string summaryDir,
        string title, TextWriter? progress, CocoMaskCache? masks = null)
    {
        var analysis = CocoErrorAnalysis.Run(task.ValSet.Coco, detections, iouType, progress: progress, masks: masks);
        var errorsDir = Path.Combine(summaryDir, ErrorsFolder);
        CocoErrorReport.Write(analysis, errorsDir, title);
        return CocoErrorReport.LinkSection(summaryDir, errorsDir, analysis);
    }

    /// <summary>
    /// Draws the detections (boxes, masks, class and score ≥ <paramref name="scoreThreshold"/>) of the first
    /// <paramref name="count"/> validation images that hold a non-crowd object, predicted at the test size, as
    /// &lt;dir&gt;/NAME.png; returns the files written.
    /// </summary>
    /// <param name="detections">The split's detections, when already predicted (`vim test`'s results): drawn from them
    /// instead of predicting the images again.</param>
    public static IReadOnlyList<string> WriteOverlays(DetectionTask task, string dir, int count, double scoreThreshold,
        IReadOnlyList<CocoDetection>? detections = null)
    {
        if (count <= 0) return [];
        return DrawDetections(task, task.ValSet, task.ValSet.ImagesWithObjects().Take(count), dir, scoreThreshold, detections);
    }

    private static List<string> DrawDetections(DetectionTask task, CocoInstanceDataset set, IEnumerable<CocoImage> images, string dir, double scoreThreshold,
        IReadOnlyList<CocoDetection>? detections)
    {
        var byImage = detections?.Select((detection, index) => (detection, index)).ToLookup(d => d.detection.ImageId);
        var written = new List<string>();
        foreach (var image in images)
        {
            using var scope = torch.NewDisposeScope();
            var imagePath = set.ImagePath(image);
            // The results hold each image's detections as the model gave them (boxes, masks as RLE at the image size);
            // an image whose size the json lacks cannot place RLE masks and is predicted again.
            var found = byImage is not null && image.Width > 0 && image.Height > 0
                ? DetectionResultAnalysis.ToInstances(byImage[image.Id].ToList(), image.Height, image.Width, task.Data.Categories,
                    withMasks: task.Detector.MaskOn, ResultsFile)
                : DetectionInference.Predict(task.Detector, imagePath, task.TestSize, task.TestAugmentation, task.Data.TestSteps);
            var overlay = Path.Combine(dir, Path.ChangeExtension(image.FileName!, ".png"));
            DetectionVisualizer.WriteOverlay(imagePath, found, task.Data.Categories.Names, scoreThreshold, overlay);
            written.Add(overlay);
        }
        return written;
    }

    /// <summary>The results file `vim test` writes, and `vim test --format-only` too.</summary>
    public const string ResultsFile = "results.json";

    /// <summary>The RPN's proposals as class-agnostic COCO results, written by `vim test --proposals`.</summary>
    public const string ProposalsFile = "proposals.json";

    /// <summary>The name the COCO evaluation server expects inside the uploaded zip: detections_&lt;split&gt;_&lt;alg&gt;_results.json.</summary>
    public static string ServerResultsName(string split) => $"detections_{split}_vimdense_results.json";

    /// <summary>
    /// `vim test --format-only` for detection (mmdet's CocoMetric(format_only=True)): predicts every image the split's
    /// image-info json lists (<see cref="DetectionData.UnlabelledSplit"/>; no annotations read) and writes
    /// &lt;outDir&gt;/results.json with the writer and detections of `vim test` (boxes and RLE masks together, as detectron2's
    /// coco_instances_results.json), the same file zipped under the server's name (<see cref="ServerResultsName"/>), and
    /// the detections of the first <paramref name="overlays"/> images drawn in &lt;outDir&gt;/overlays/. Nothing is evaluated.
    /// Returns the image and detection counts and the zip's path. Over K ranks (<see cref="DetectionTask.Communicator"/>) each
    /// predicts its share of the images and rank 0 alone writes; the other ranks return no detections and no archive.
    /// </summary>
    public static (int Images, int Detections, string Archive) FormatOnly(DetectionTask task, string checkpoint, string split, string outDir, bool ema,
        int overlays, double overlayThreshold, TextWriter progress)
    {
        var images = task.Data.UnlabelledSplit(split);
        // Loaded first: a checkpoint that does not fit leaves no output folder behind.
        TrainingCheckpoint.LoadWeights(task.Model, checkpoint, ema);
        bool root = task.Communicator.IsRoot();
        if (root) Directory.CreateDirectory(outDir);
        int ranks = task.Communicator.WorldSize;
        progress.WriteLine($"format-only: predicting {images.Count} images of {images.AnnotationSource}{(ranks > 1 ? $" over {ranks} processes" : "")}");
        int reportEvery = Math.Max(1, images.Count / ranks / 20);
        var detections = task.PredictSplit(images, (done, total) =>
        {
            if (done % reportEvery == 0 || done == total) progress.WriteLine($"format-only: {done}/{total} images{(ranks > 1 ? " of this process's share" : "")}");
        });
        // The other ranks' detections are rank 0's now (PredictSplit gathers them), and so is every file.
        if (!root) return (images.Count, 0, "");
        var results = Path.Combine(outDir, ResultsFile);
        CocoResults.Save(results, detections);
        var archive = Path.Combine(outDir, Path.ChangeExtension(ServerResultsName(split), ".zip"));
        ZipFolder.Write(archive, [(ServerResultsName(split), results)]);
        DrawDetections(task, images, images.Images.Take(Math.Max(0, overlays)), Path.Combine(outDir, "overlays"), overlayThreshold, detections);
        return (images.Count, detections.Count, archive);
    }
}
