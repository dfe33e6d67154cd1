using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Core.IO;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Prediction;
using Vim.Detection;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim infer CONFIG --checkpoint C IMAGE... [--out DIR] [--score-thr 0.3] [--batch-size N] [--ema] [--slice-size 640 …]`: run a trained
/// model on image files. Detection: boxes, masks and labels drawn on each image (&lt;out&gt;/NAME.png)
/// and the detections as json (&lt;out&gt;/NAME.json); with --slice-size each image predicted in overlapping patches
/// (<see cref="DetectionSlicing"/>, mmdet's large_image_demo.py). Segmentation: class-index, colour and overlay
/// PNGs (&lt;out&gt;/pred, color, overlay). The model is opened and run through the library's <see cref="Detector"/> and
/// <see cref="Segmentor"/>, so a .NET program using them gets what this command writes.
/// </summary>
public static class InferCommand
{
    /// <summary>
    /// Refuses a launch by mpirun with several processes: infer has no ground truth to share an evaluation over, and every
    /// process would predict every image and write the same files. A large image list is split by the user instead (one run
    /// per part, each with its own --out), where each run keeps its own pace.
    /// </summary>
    private static void RequireOneProcess()
    {
        if (Communicators.MpirunProcesses > 1)
            throw new VimException($"vim infer runs in one process, and mpirun started {Communicators.MpirunProcesses}: each would predict every image and write " +
                "the same files. Run ./vim infer without mpirun (for many images, one run per part of the list, each with its own --out); " +
                "mpirun -np K ./vim test shares a split's evaluation over K processes.");
    }

    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML) the checkpoint was trained with." };
        var images = new Argument<string[]>("images")
        {
            Description = "Image files, or folders whose images (" + string.Join(", ", ImageExtensions) + ") are all run, in name order (not their subfolders); " +
                "video files (" + string.Join(", ", VideoFiles.Extensions) + ") are run frame by frame into a drawn video (mmdet's and mmseg's video_demo).",
            Arity = ArgumentArity.OneOrMore,
        };
        var frameStep = new Option<int>("--frame-step") { Description = "Videos: run every N-th frame (the drawn video plays at the input's rate / N).", DefaultValueFactory = _ => 1 };
        var maxFrames = new Option<int?>("--max-frames") { Description = "Videos: stop after this many processed frames." };
        var checkpoint = new Option<string>("--checkpoint") { Description = "A training checkpoint (best.safetensors, iter_*.safetensors; its checksums are verified) or a published one (vim checkpoint publish).", Required = true };
        var outDir = new Option<string?>("--out") { Description = "Output folder (default: <checkpoint folder>/infer)." };
        var scoreThr = new Option<double>("--score-thr") { Description = "Detection: draw and list detections scoring at least this.", DefaultValueFactory = _ => 0.3 };
        var batchSize = new Option<int>("--batch-size")
        {
            Description = "Images (and video frames) run through the model together; only images whose test views have one shape share a batch " +
                "(detection: all that fit the backbone's square); the results are those of one at a time. Meant for GPUs; on 2 CPU cores the demo " +
                "segmentor saved a quarter of its CPU time at 4, the demo detector 6-8% (its heads' convolutions are compute-bound already).",
            DefaultValueFactory = _ => 1,
        };
        var ema = new Option<bool>("--ema") { Description = "Use the EMA weights stored in the checkpoint." };
        var defaults = new DetectionSlicing();
        var sliceSize = new Option<int?>("--slice-size")
        {
            Description = "Detection: predict each image (and video frame) in overlapping patches of this side in the image's pixels and merge them " +
                "(mmdet's large_image_demo.py --patch-size, SAHI), for images much larger than data.crop_size whose small objects a downscale loses. " +
                "Each patch goes through the test pipeline as an image would (resized into data.crop_size: --slice-size equal to it predicts at the " +
                "image's own resolution); edge patches are moved inward so all are full size; --batch-size then batches one image's patches.",
        };
        var sliceOverlap = new Option<double?>("--slice-overlap") { Description = $"With --slice-size: the share of a patch its neighbour overlaps, within [0, 1) (mmdet's --patch-overlap-ratio; default {Text(defaults.OverlapRatio)})." };
        var mergeIou = new Option<double?>("--merge-iou") { Description = $"With --slice-size: the IoU above which the merge drops (or Soft-NMS decays) a box of the same class (mmdet's --merge-iou-thr; default {Text(defaults.MergeIou)})." };
        var mergeNms = new Option<string?>("--merge-nms") { Description = "With --slice-size: nms or soft_nms (mmcv's linear decay, σ 0.5, minimum score 0.001; its decayed scores are reported) for the merge (mmdet's --merge-nms-type; default nms). Every merged detection is kept (no detections_per_image cap)." };
        var sliceWhole = new Option<bool>("--slice-whole-image") { Description = "With --slice-size: also predict the whole image resized as without slicing and merge its detections too (SAHI's perform_standard_pred), for objects larger than a patch." };
        var sliceDebug = new Option<bool>("--slice-debug") { Description = "With --slice-size: outline the patches (dashed, white) on the drawn images (mmdet's --debug)." };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("infer", "Run a trained detector or segmentor on images or videos, as Vim.Detection.Detector / Vim.Segmentation.Segmentor do from .NET code; write drawn PNGs (and detections as json). " +
            "One process: refused under mpirun with several (mpirun -np K vim test shares an evaluation).");
        command.Arguments.Add(configArg);
        command.Arguments.Add(images);
        command.Options.Add(checkpoint);
        command.Options.Add(outDir);
        command.Options.Add(scoreThr);
        command.Options.Add(batchSize);
        command.Options.Add(ema);
        command.Options.Add(sliceSize);
        command.Options.Add(sliceOverlap);
        command.Options.Add(mergeIou);
        command.Options.Add(mergeNms);
        command.Options.Add(sliceWhole);
        command.Options.Add(sliceDebug);
        command.Options.Add(frameStep);
        command.Options.Add(maxFrames);
        command.Options.Add(set);
        command.SetAction(parse =>
        {
            RequireOneProcess();
            var inputs = ExpandFolders(parse.GetValue(images) ?? []);
            var videoPaths = inputs.Where(VideoFiles.IsVideo).ToList();
            var imagePaths = inputs.Where(p => !VideoFiles.IsVideo(p)).ToList();
            if (imagePaths.Count > 0 || videoPaths.Count == 0) CheckImages(imagePaths);
            CheckVideos(videoPaths);
            var frames = new FrameSelection(parse.GetValue(frameStep), parse.GetValue(maxFrames));
            double threshold = parse.GetValue(scoreThr);
            if (threshold is < 0 or > 1) throw new VimException($"--score-thr must be within [0, 1], got {threshold.ToString(CultureInfo.InvariantCulture)}");
            int batch = parse.GetValue(batchSize);
            SameShapeBatches<int, BatchShape>.RequireBatchSize(batch, "--batch-size");
            var slicing = Slicing(parse.GetValue(sliceSize), parse.GetValue(sliceOverlap), parse.GetValue(mergeIou), parse.GetValue(mergeNms),
                parse.GetValue(sliceWhole), parse.GetValue(sliceDebug));
            var request = slicing is null ? null : new DetectionRequest { Slicing = slicing };
            bool drawPatches = parse.GetValue(sliceDebug);
            var checkpointPath = parse.GetValue(checkpoint)!;
            bool useEma = parse.GetValue(ema);
            var options = new ModelLoadOptions { Overrides = parse.GetValue(set) ?? [], Ema = useEma, Log = Console.Out };
            var config = TrainedModelSource.LoadConfig(parse.GetValue(configArg)!, checkpointPath, task: null, options);
            var dir = parse.GetValue(outDir) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!, "infer");
            OutputFolder.Check(dir, "--out");
            if (config.Task != TaskKind.Detection && slicing is not null)
                throw new VimException("--slice-size slices detection only; a segmentation config predicts large images by sliding its crop " +
                    "window (model.seg_test.mode: slide, with crop_size and stride)");
            if (config.Task == TaskKind.Detection)
            {
                using var detector = Detector.Load(config, checkpointPath, useEma, Console.Out);
                if (imagePaths.Count > 0)
                    foreach (var (image, drawn, total) in RunDetection(detector, imagePaths, dir, threshold, batch, request, drawPatches))
                        Console.WriteLine($"{image}: {drawn} detection(s) at score >= {threshold.ToString(CultureInfo.InvariantCulture)} ({total} above the model's own threshold)");
                foreach (var video in videoPaths)
                {
                    var written = RunDetectionVideo(detector, video, dir, threshold, frames, Console.Out, batch, request, drawPatches);
                    Console.WriteLine($"{video}: {written.Frames} frame(s), detections at score >= {threshold.ToString(CultureInfo.InvariantCulture)} drawn into {written.Output}");
                }
            }
            else
            {
                using var segmentor = Segmentor.Load(config, checkpointPath, useEma, Console.Out);
                if (imagePaths.Count > 0) RunSegmentation(segmentor, imagePaths, dir, batch);
                foreach (var image in imagePaths) Console.WriteLine($"{image}: segmented");
                foreach (var video in videoPaths)
                {
                    var written = RunSegmentationVideo(segmentor, video, dir, frames, Console.Out, batch);
                    Console.WriteLine($"{video}: {written.Frames} frame(s) segmented into {written.Output}");
                }
            }
            Console.WriteLine($"results in {dir}");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Detects objects in each image and writes &lt;dir&gt;/NAME.png (detections drawn on the original
    /// image) and &lt;dir&gt;/NAME.json; returns per image how many detections passed the threshold and how many the model returned.
    /// </summary>
    /// <param name="batchSize">Images predicted together (<see cref="Detector"/>'s list <c>Predict</c>); with slicing, one image's patches.</param>
    /// <param name="request">What to ask of each prediction (e.g. <see cref="DetectionRequest.Slicing"/>); null: the default.</param>
    /// <param name="drawPatches">With slicing: outline the patches on the drawings (<see cref="DetectionVisualizer.DrawPatches"/>).</param>
    public static IReadOnlyList<(string Image, int Drawn, int Total)> RunDetection(Detector detector, IReadOnlyList<string> imagePaths, string dir,
        double scoreThreshold, int batchSize = 1, DetectionRequest? request = null, bool drawPatches = false)
    {
        CheckImages(imagePaths);
        // A PNG input in the output folder would be replaced by its drawing.
        var overwritten = imagePaths.FirstOrDefault(p => Path.GetFullPath(p) == Path.GetFullPath(Path.Combine(dir, Path.GetFileNameWithoutExtension(p) + ".png")));
        if (overwritten is not null)
            throw new VimException($"{overwritten}: the drawing would be written over this input image (--out {dir}); choose another --out folder");
        Directory.CreateDirectory(dir);
        var written = new List<(string, int, int)>();
        foreach (var (paths, results) in InWindows(imagePaths, batchSize, window => detector.Predict(window, request, batchSize)))
        {
            for (int i = 0; i < paths.Count; i++)
            {
                var (imagePath, found) = (paths[i], results[i]);
                var name = Path.GetFileNameWithoutExtension(imagePath);
                var patches = drawPatches && request?.Slicing is { } slicing ? SlicedDetection.Patches(found.Height, found.Width, slicing) : null;
                int drawn = DetectionVisualizer.WriteOverlay(imagePath, found, scoreThreshold, Path.Combine(dir, name + ".png"), patches);
                WriteDetectionsJson(Path.Combine(dir, name + ".json"), imagePath, found, scoreThreshold);
                written.Add((imagePath, drawn, found.Detections.Count));
            }
        }
        return written;
    }

    /// <summary>
    /// The inputs predicted a window at a time, each window's results written before the next is read: the predictor groups
    /// images of one shape within a window (<see cref="SameShapeBatches{TItem, TShape}.PendingLimitFor"/>, the images it
    /// holds at most anyway), and only one window's results are in memory at once.
    /// </summary>
    private static IEnumerable<(IReadOnlyList<TInput> Inputs, IReadOnlyList<TResult> Results)> InWindows<TInput, TResult>(IReadOnlyList<TInput> inputs,
        int batchSize, Func<IReadOnlyList<TInput>, IReadOnlyList<TResult>> predict)
    {
        int window = SameShapeBatches<int, BatchShape>.PendingLimitFor(batchSize);
        for (int start = 0; start < inputs.Count; start += window)
        {
            var part = inputs.Skip(start).Take(window).ToList();
            yield return (part, predict(part));
        }
    }

    /// <summary>Which frames of a video `vim infer` runs: every <see cref="Step"/>-th, at most <see cref="Max"/> of them.</summary>
    public sealed record FrameSelection
    {
        public FrameSelection(int step = 1, int? max = null)
        {
            if (step < 1) throw new VimException($"--frame-step must be at least 1, got {step}");
            if (max is < 1) throw new VimException($"--max-frames must be at least 1, got {max}");
            (Step, Max) = (step, max);
        }

        public int Step { get; }
        public int? Max { get; }
    }

    /// <summary>
    /// Detects objects in every selected frame of a video, exactly as in an image file, and writes the frames with their
    /// detections drawn as &lt;dir&gt;/NAME (<see cref="VideoFiles.OutputFormat"/>); returns the frames written and the file.
    /// </summary>
    /// <param name="batchSize">Frames predicted together (all of one size, so batches are always full); with slicing, one frame's patches.</param>
    /// <param name="request">What to ask of each frame's prediction (e.g. <see cref="DetectionRequest.Slicing"/>); null: the default.</param>
    /// <param name="drawPatches">With slicing: outline the patches on each drawn frame, as <see cref="RunDetection"/> on images.</param>
    public static (int Frames, string Output) RunDetectionVideo(Detector detector, string videoPath, string dir, double scoreThreshold,
        FrameSelection frames, TextWriter? progress = null, int batchSize = 1, DetectionRequest? request = null, bool drawPatches = false) =>
        RunVideo(videoPath, dir, frames, progress, batchSize, batch =>
        {
            var found = detector.Predict(batch.Select(FramePixels).ToList(), request, batchSize);
            for (int i = 0; i < batch.Count; i++)
            {
                if (drawPatches && request?.Slicing is { } slicing)
                    DetectionVisualizer.DrawPatches(batch[i], SlicedDetection.Patches(found[i].Height, found[i].Width, slicing));
                DetectionVisualizer.Draw(batch[i], found[i], scoreThreshold);
            }
            return batch;
        });

    /// <summary>Segments every selected frame of a video as evaluation segments an image, and writes the colour overlays as a video (see <see cref="RunDetectionVideo"/>).</summary>
    public static (int Frames, string Output) RunSegmentationVideo(Segmentor segmentor, string videoPath, string dir, FrameSelection frames,
        TextWriter? progress = null, int batchSize = 1) =>
        RunVideo(videoPath, dir, frames, progress, batchSize, batch =>
        {
            var found = segmentor.Predict(batch.Select(FramePixels).ToList(), null, batchSize);
            return batch.Select((frame, i) => SegmentationVisualizer.Overlay(frame, found[i].ClassMap, ignoreIndex: null)).ToList();
        });

    private static RgbImage FramePixels(OpenCvSharp.Mat frame)
    {
        var (rgb, height, width) = ImageDecoder.ToRgb(frame);
        return new RgbImage(height, width, rgb);
    }

    /// <summary>
    /// Reads the selected frames, <paramref name="batchSize"/> at a time, has <paramref name="draw"/> turn each batch into
    /// its drawn frames (the frames themselves, drawn on, or new Mats), writes them in order into the output video at the
    /// input's frame rate / step, and renames it into place once complete. Progress: frames done and time left, every few seconds.
    /// </summary>
    private static (int Frames, string Output) RunVideo(string videoPath, string dir, FrameSelection frames, TextWriter? progress, int batchSize,
        Func<IReadOnlyList<OpenCvSharp.Mat>, IReadOnlyList<OpenCvSharp.Mat>> draw)
    {
        using var reader = new VideoFiles.Reader(videoPath);
        var (extension, fourCc) = VideoFiles.OutputFormat(videoPath);
        var output = Path.Combine(dir, Path.GetFileNameWithoutExtension(videoPath) + extension);
        if (Path.GetFullPath(output) == Path.GetFullPath(videoPath))
            throw new VimException($"{videoPath}: the drawn video would be written over this input (--out {dir}); choose another --out folder");
        int expected = reader.FrameCount == 0 ? 0 : (reader.FrameCount + frames.Step - 1) / frames.Step;
        if (frames.Max is int max && expected > 0) expected = Math.Min(expected, max);
        var counter = expected > 0 ? new Vim.Data.ItemProgress(progress, expected, $"frames of {Path.GetFileName(videoPath)}") : null;
        using var writer = new VideoFiles.Writer(output, fourCc, reader.Fps / frames.Step, reader.Width, reader.Height);
        using (no_grad())
        {
            foreach (var batch in reader.Frames(frames.Step, frames.Max).Select(f => f.Bgr).Chunk(batchSize))
            {
                using var scope = NewDisposeScope();
                IReadOnlyList<OpenCvSharp.Mat> drawn = [];
                try
                {
                    drawn = draw(batch);
                    foreach (var frame in drawn)
                    {
                        writer.Write(frame);
                        counter?.Advance();
                    }
                }
                finally
                {
                    foreach (var frame in drawn.Where(d => !batch.Contains(d))) frame.Dispose();
                    foreach (var frame in batch) frame.Dispose();
                }
            }
        }
        if (writer.FramesWritten == 0) throw new VimException($"{videoPath}: no frame could be decoded");
        writer.Commit();
        return (writer.FramesWritten, writer.FinalPath);
    }

    private static void CheckVideos(IReadOnlyList<string> videoPaths)
    {
        foreach (var path in videoPaths)
            if (!File.Exists(path)) throw new VimException($"{path}: video file not found");
        var clash = videoPaths.GroupBy(Path.GetFileNameWithoutExtension).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null)
            throw new VimException($"{string.Join(" and ", clash)}: two videos share the name '{clash.Key}', so their outputs would collide; copy one under another name");
    }

    /// <summary>Segments each image as evaluation does and writes &lt;dir&gt;/{pred,color,overlay}/NAME.png.</summary>
    /// <param name="batchSize">Images predicted together (<see cref="Segmentor"/>'s list <c>Predict</c>).</param>
    public static void RunSegmentation(Segmentor segmentor, IReadOnlyList<string> imagePaths, string dir, int batchSize = 1)
    {
        CheckImages(imagePaths);
        foreach (var (paths, predictions) in InWindows(imagePaths, batchSize, window => segmentor.Predict(window, null, batchSize)))
            for (int i = 0; i < paths.Count; i++)
                SegmentationVisualizer.Write(dir, Path.GetFileNameWithoutExtension(paths[i]), predictions[i].ClassMap, predictions[i].Height, predictions[i].Width, paths[i]);
    }

    /// <summary>
    /// The sliced prediction the --slice-* options ask for (null without --slice-size, which the others need), checked here
    /// so a bad value is refused before the model is loaded; unset options keep <see cref="DetectionSlicing"/>'s defaults.
    /// </summary>
    public static DetectionSlicing? Slicing(int? size, double? overlap, double? mergeIou, string? mergeNms, bool wholeImage, bool debug)
    {
        if (size is null)
        {
            var orphan = new (string Name, bool Given)[]
            {
                ("--slice-overlap", overlap is not null), ("--merge-iou", mergeIou is not null), ("--merge-nms", mergeNms is not null),
                ("--slice-whole-image", wholeImage), ("--slice-debug", debug),
            }.FirstOrDefault(o => o.Given);
            if (orphan.Name is not null) throw new VimException($"{orphan.Name} sets sliced prediction up, which --slice-size (the patch side in pixels) turns on");
            return null;
        }
        var slicing = new DetectionSlicing { PatchSize = size.Value, IncludeFullImage = wholeImage };
        if (overlap is double o) slicing = slicing with { OverlapRatio = o };
        if (mergeIou is double iou) slicing = slicing with { MergeIou = iou };
        if (mergeNms is not null)
        {
            var types = Enum.GetValues<DetectionNmsType>();
            var type = types.Where(t => ConfigBinder.KeyOf(t) == mergeNms).Cast<DetectionNmsType?>().FirstOrDefault()
                ?? throw new VimException($"--merge-nms: expected {string.Join(" or ", types.Select(t => ConfigBinder.KeyOf(t)))}, got '{mergeNms}'");
            slicing = slicing with { MergeNmsType = type };
        }
        slicing.Check();
        return slicing;
    }

    private static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The categories `vim infer` names detections with (<see cref="DetectionData.CategoriesForInference"/>, notes on the console).</summary>
    public static CategoryMap Categories(ExperimentConfig config) => DetectionData.CategoriesForInference(config, Console.Out);

    /// <summary>What a folder argument contributes, as mmdet's image demo reads a folder (IMG_EXTENSIONS, not recursive); any case.</summary>
    public static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"];

    /// <summary>The image arguments with each folder replaced by its image files in ordinal name order; files stay as given.</summary>
    public static IReadOnlyList<string> ExpandFolders(IEnumerable<string> arguments)
    {
        var paths = new List<string>();
        foreach (var argument in arguments)
        {
            if (!Directory.Exists(argument))
            {
                paths.Add(argument);
                continue;
            }
            var found = Directory.EnumerateFiles(argument)
                .Where(f => ImageExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal).ToList();
            if (found.Count == 0)
                throw new VimException($"{argument}: a folder without images ({string.Join(", ", ImageExtensions)}); subfolders are not searched");
            paths.AddRange(found);
        }
        return paths;
    }

    private static void CheckImages(IReadOnlyList<string> imagePaths)
    {
        if (imagePaths.Count == 0) throw new VimException("no images or videos given");
        foreach (var path in imagePaths)
            if (!File.Exists(path)) throw new VimException($"{path}: image file not found");
        // Outputs are named after the image, so two images of the same name would overwrite each other.
        var clash = imagePaths.GroupBy(Path.GetFileNameWithoutExtension).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null)
            throw new VimException($"{string.Join(" and ", clash)}: two images share the name '{clash.Key}', so their outputs would collide; copy one under another name");
    }

    private static void WriteDetectionsJson(string path, string imagePath, ImageDetections found, double scoreThreshold)
    {
        var detections = found.Detections;
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("image", imagePath);
            w.WriteNumber("height", found.Height);
            w.WriteNumber("width", found.Width);
            w.WriteNumber("score_threshold", scoreThreshold);
            w.WriteStartArray("detections");
            foreach (var d in detections.Where(d => (double)d.Score >= scoreThreshold).OrderByDescending(d => d.Score))
            {
                w.WriteStartObject();
                w.WriteNumber("category_id", d.CategoryId);
                w.WriteString("category", d.CategoryName);
                w.WriteNumber("score", Math.Round((double)d.Score, 5));
                double x0 = d.X1, y0 = d.Y1, x1 = d.X2, y1 = d.Y2;
                w.WriteStartArray("bbox");
                foreach (var v in new[] { x0, y0, x1 - x0, y1 - y0 }) w.WriteNumberValue(Math.Round(v, 2));
                w.WriteEndArray();
                if (d.Mask is { } mask) CocoResults.WriteSegmentation(w, CocoSegmentation.FromRle(mask));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }
}
