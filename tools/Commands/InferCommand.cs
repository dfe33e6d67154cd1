using Vim.Data.Loading;
using Vim.Core.Engine;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.IO;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Masks;
using Vim.Data.Transforms;
using Vim.Detection;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim infer CONFIG --checkpoint C IMAGE... [--out DIR] [--score-thr 0.3] [--ema]`: run a trained
/// model on image files. Detection: boxes, masks and labels drawn on each image (&lt;out&gt;/NAME.png)
/// and the detections as json (&lt;out&gt;/NAME.json). Segmentation: class-index, colour and overlay
/// PNGs (&lt;out&gt;/pred, color, overlay).
/// </summary>
public static class InferCommand
{
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
        var checkpoint = new Option<string>("--checkpoint") { Description = "A training checkpoint (best.safetensors, iter_*.safetensors).", Required = true };
        var outDir = new Option<string?>("--out") { Description = "Output folder (default: <checkpoint folder>/infer)." };
        var scoreThr = new Option<double>("--score-thr") { Description = "Detection: draw and list detections scoring at least this.", DefaultValueFactory = _ => 0.3 };
        var ema = new Option<bool>("--ema") { Description = "Use the EMA weights stored in the checkpoint." };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("infer", "Run a trained detector or segmentor on images; write drawn PNGs (and detections as json).");
        command.Arguments.Add(configArg);
        command.Arguments.Add(images);
        command.Options.Add(checkpoint);
        command.Options.Add(outDir);
        command.Options.Add(scoreThr);
        command.Options.Add(ema);
        command.Options.Add(frameStep);
        command.Options.Add(maxFrames);
        command.Options.Add(set);
        command.SetAction(parse =>
        {
            var inputs = ExpandFolders(parse.GetValue(images) ?? []);
            var videoPaths = inputs.Where(VideoFiles.IsVideo).ToList();
            var imagePaths = inputs.Where(p => !VideoFiles.IsVideo(p)).ToList();
            if (imagePaths.Count > 0 || videoPaths.Count == 0) CheckImages(imagePaths);
            CheckVideos(videoPaths);
            var frames = new FrameSelection(parse.GetValue(frameStep), parse.GetValue(maxFrames));
            double threshold = parse.GetValue(scoreThr);
            if (threshold is < 0 or > 1) throw new VimException($"--score-thr must be within [0, 1], got {threshold.ToString(CultureInfo.InvariantCulture)}");
            var checkpointPath = parse.GetValue(checkpoint)!;
            CheckpointFile.RequireFile(checkpointPath);
            var (config, _) = TrainCommand.Prepare(parse.GetValue(configArg)!, null, parse.GetValue(set) ?? []);
            TrainingLoaderChecks.CheckSettings(config.Data);
            var dir = parse.GetValue(outDir) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!, "infer");
            OutputFolder.Check(dir, "--out");
            bool useEma = parse.GetValue(ema);
            if (config.Task == TaskKind.Detection)
            {
                var categories = Categories(config);
                using var detector = DetectionTask.FromConfig(config);
                DeviceSelection.MoveModel(detector, DeviceSelection.Resolve(config.Runtime));
                TrainingCheckpoint.LoadWeights(detector, checkpointPath, useEma);
                if (imagePaths.Count > 0)
                    foreach (var (image, drawn, total) in RunDetection(detector, categories, imagePaths, dir, threshold, config.Data.CropSize[0], config.Model.DetTest))
                        Console.WriteLine($"{image}: {drawn} detection(s) at score >= {threshold.ToString(CultureInfo.InvariantCulture)} ({total} above the model's own threshold)");
                foreach (var video in videoPaths)
                {
                    var written = RunDetectionVideo(detector, categories, video, dir, threshold, config.Data.CropSize[0], config.Model.DetTest, frames, Console.Out);
                    Console.WriteLine($"{video}: {written.Frames} frame(s), detections at score >= {threshold.ToString(CultureInfo.InvariantCulture)} drawn into {written.Output}");
                }
            }
            else
            {
                using var segmentor = EncoderDecoder.FromConfig(config, config.Runtime.Seed);
                DeviceSelection.MoveModel(segmentor, DeviceSelection.Resolve(config.Runtime));
                TrainingCheckpoint.LoadWeights(segmentor, checkpointPath, useEma);
                if (imagePaths.Count > 0) RunSegmentation(segmentor, config, imagePaths, dir);
                foreach (var image in imagePaths) Console.WriteLine($"{image}: segmented");
                foreach (var video in videoPaths)
                {
                    var written = RunSegmentationVideo(segmentor, config, video, dir, frames, Console.Out);
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
    public static IReadOnlyList<(string Image, int Drawn, int Total)> RunDetection(CascadeMaskRcnn detector, CategoryMap categories,
        IReadOnlyList<string> imagePaths, string dir, double scoreThreshold, int testSize,
        DetectionTestConfig? test = null)
    {
        CheckImages(imagePaths);
        // A PNG input in the output folder would be replaced by its drawing.
        var overwritten = imagePaths.FirstOrDefault(p => Path.GetFullPath(p) == Path.GetFullPath(Path.Combine(dir, Path.GetFileNameWithoutExtension(p) + ".png")));
        if (overwritten is not null)
            throw new VimException($"{overwritten}: the drawing would be written over this input image (--out {dir}); choose another --out folder");
        if (categories.Count != detector.RoiHeads.Settings.NumClasses)
            throw new VimException($"the detector has {detector.RoiHeads.Settings.NumClasses} classes but {categories.Count} category names were given");
        Directory.CreateDirectory(dir);
        var written = new List<(string, int, int)>();
        foreach (var imagePath in imagePaths)
        {
            using var scope = NewDisposeScope();
            var found = DetectionInference.Predict(detector, imagePath, testSize, test);
            var name = Path.GetFileNameWithoutExtension(imagePath);
            int drawn = DetectionVisualizer.WriteOverlay(imagePath, found, categories.Names, scoreThreshold, Path.Combine(dir, name + ".png"));
            WriteDetectionsJson(Path.Combine(dir, name + ".json"), imagePath, found, categories, scoreThreshold);
            written.Add((imagePath, drawn, (int)found.Count));
        }
        return written;
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
    public static (int Frames, string Output) RunDetectionVideo(CascadeMaskRcnn detector, CategoryMap categories, string videoPath, string dir,
        double scoreThreshold, int testSize, DetectionTestConfig? test, FrameSelection frames, TextWriter? progress = null) =>
        RunVideo(videoPath, dir, frames, progress, (frame, name) =>
        {
            var (rgb, height, width) = ImageDecoder.ToRgb(frame);
            var found = DetectionInference.Predict(detector, rgb, height, width, name, testSize, test);
            DetectionVisualizer.Draw(frame, found, categories.Names, scoreThreshold);
            return frame;
        });

    /// <summary>Segments every selected frame of a video as evaluation segments an image, and writes the colour overlays as a video (see <see cref="RunDetectionVideo"/>).</summary>
    public static (int Frames, string Output) RunSegmentationVideo(EncoderDecoder segmentor, ExperimentConfig config, string videoPath, string dir,
        FrameSelection frames, TextWriter? progress = null)
    {
        var pipelines = SegmentationInference.TestPipelines(config.Data.Scale, config.Model.SegTest);
        segmentor.eval();
        var device = DeviceSelection.Of(segmentor);
        return RunVideo(videoPath, dir, frames, progress, (frame, name) =>
        {
            var (rgb, height, width) = ImageDecoder.ToRgb(frame);
            var views = SegmentationInference.TestViews(rgb, height, width, name, pipelines, device);
            var labels = SegmentationInference.Labels(SegmentationInference.Scores(segmentor, views, config.Model.SegTest, height, width));
            return SegmentationVisualizer.Overlay(frame, labels, ignoreIndex: null);
        });
    }

    /// <summary>
    /// Reads the selected frames, has <paramref name="draw"/> turn each into its drawn frame (the frame itself, drawn on,
    /// or a new Mat), writes them in order into the output video at the input's frame rate / step, and renames it into
    /// place once complete. Progress: frames done and time left, every few seconds.
    /// </summary>
    private static (int Frames, string Output) RunVideo(string videoPath, string dir, FrameSelection frames, TextWriter? progress,
        Func<OpenCvSharp.Mat, string, OpenCvSharp.Mat> draw)
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
            foreach (var (index, frame) in reader.Frames(frames.Step, frames.Max))
            {
                using var scope = NewDisposeScope();
                using (frame)
                {
                    var drawn = draw(frame, $"{videoPath} frame {index}");
                    try
                    {
                        writer.Write(drawn);
                    }
                    finally
                    {
                        if (!ReferenceEquals(drawn, frame)) drawn.Dispose();
                    }
                }
                counter?.Advance();
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
    public static void RunSegmentation(EncoderDecoder segmentor, ExperimentConfig config, IReadOnlyList<string> imagePaths, string dir)
    {
        CheckImages(imagePaths);
        var data = config.Data;
        var pipelines = SegmentationInference.TestPipelines(data.Scale, config.Model.SegTest);
        segmentor.eval();
        var device = DeviceSelection.Of(segmentor);
        foreach (var imagePath in imagePaths)
        {
            using var scope = NewDisposeScope();
            var (views, height, width) = SegmentationInference.TestViews(imagePath, pipelines, device);
            var prediction = SegmentationInference.Labels(SegmentationInference.Scores(segmentor, views, config.Model.SegTest, height, width));
            SegmentationVisualizer.Write(dir, Path.GetFileNameWithoutExtension(imagePath), prediction, height, width, imagePath);
        }
    }

    /// <summary>
    /// Category names and ids from the config's COCO annotations (the first training split, else the validation
    /// split) when they exist; otherwise "class K" with ids K+1, so a checkpoint can be used without its dataset.
    /// </summary>
    public static CategoryMap Categories(ExperimentConfig config)
    {
        var data = config.Data;
        // The model's classes are the first training file's categories in id order.
        foreach (var split in data.TrainSplits.Take(1).Append(data.ValSplit))
        {
            var path = DetectionData.AnnotationFile(data, split);
            if (!File.Exists(path)) continue;
            // The categories alone: train2017's images and annotations would take tens of seconds to build and are never used.
            var map = CategoryMap.Load(path);
            if (map.Count != config.Model.NumClasses)
                throw new VimException($"{path} has {map.Count} categories but model.num_classes is {config.Model.NumClasses}");
            return map;
        }
        Console.WriteLine($"note: no annotation file {DetectionData.AnnotationFile(data, data.TrainSplits[0])} (nor the validation split's); labels are class indices");
        return new CategoryMap(Enumerable.Range(0, config.Model.NumClasses).Select(k => new CocoCategory(k + 1, $"class {k}", null)));
    }

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

    private static void WriteDetectionsJson(string path, string imagePath, Detection.Structures.Instances found, CategoryMap categories, double scoreThreshold)
    {
        var boxes = found.Count == 0 ? [] : found.Boxes.Tensor.cpu().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var classes = found.Count == 0 ? [] : found.Classes!.cpu().to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        var scores = found.Count == 0 ? [] : found.Scores!.cpu().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        int height = (int)found.ImageHeight, width = (int)found.ImageWidth;
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("image", imagePath);
            w.WriteNumber("height", height);
            w.WriteNumber("width", width);
            w.WriteNumber("score_threshold", scoreThreshold);
            w.WriteStartArray("detections");
            foreach (int i in Enumerable.Range(0, scores.Length).Where(i => scores[i] >= scoreThreshold).OrderByDescending(i => scores[i]))
            {
                w.WriteStartObject();
                w.WriteNumber("category_id", categories.ToCategoryId((int)classes[i]));
                w.WriteString("category", categories.Names[(int)classes[i]]);
                w.WriteNumber("score", Math.Round(scores[i], 5));
                double x0 = boxes[4 * i], y0 = boxes[4 * i + 1], x1 = boxes[4 * i + 2], y1 = boxes[4 * i + 3];
                w.WriteStartArray("bbox");
                foreach (var v in new[] { x0, y0, x1 - x0, y1 - y0 }) w.WriteNumberValue(Math.Round(v, 2));
                w.WriteEndArray();
                if (found.Masks is not null)
                {
                    var bitmap = found.Masks[i].cpu().to_type(ScalarType.Byte).contiguous().flatten().data<byte>().ToArray();
                    CocoResults.WriteSegmentation(w, CocoSegmentation.FromRle(Rle.Encode(bitmap, height, width)));
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }
}
