using System.CommandLine;
using System.Globalization;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Detection;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim model flops TARGET [--size H[,W]] [--depth 2] [--json-out F] [--set k=v] [--images N] [--checkpoint C]`: parameters
/// and FLOPs by module of a registered model or of the whole model a config builds (mmdet/mmseg's get_flops.py,
/// detectron2's analyze_model.py with fvcore's flop_count_table).
/// </summary>
public static class ModelFlopsCommand
{
    public const int DefaultDepth = 2;

    /// <summary>Larger inputs than this are refused as typos before anything is allocated.</summary>
    private const int MaxSide = 8192;

    private const string Help =
        "Parameters and FLOPs of a model by module, counted in one real forward (eval mode, no autograd) on a random-normal input " +
        "(seed 0) of the model's own input size (classifiers and backbones: their img_size, 224 for classifiers; a segmentation config: " +
        "model.seg_test.crop_size, the window each sliding forward sees, or in whole mode a square image resized into data.scale, " +
        "min(data.scale)²; a detection config: " +
        "data.crop_size², padded to the backbone's square like every test image). One fused multiply-add counts as one FLOP, as fvcore " +
        "and mmcv count (they report MACs under the name FLOPs; the DeiT and ViTDet papers report these): DeiT-Ti at 224² is 1.26 GFLOPs. " +
        "Convolutions and linear layers count their products (no bias), norms fvcore's per-element estimates, bilinear resizes 4 per " +
        "output; the selective scan 9·B·L·D·N plus the D skip and the z gate (VMamba's flops_selective_scan_fn), attention 2·B·H·L²·d, " +
        "RoIAlign 4 per sample point and channel; activations, element-wise ops, max pooling, NMS and post-processing count 0. " +
        "A detector's count depends on its input: its RoI heads count the proposals the RPN actually kept and its mask head the " +
        "detections found, so an untrained detector on noise differs from a trained one on real images: --checkpoint and --images N " +
        "(the mean over the first N validation images through the test pipeline, as detectron2's analyze_model averages over images) " +
        "measure the latter. Modules with parameters that the forward did not run are listed (their FLOPs are missing).";

    public static Command Create()
    {
        var target = new Argument<string>("target") { Description = "A registered model name (`vim model list`) or a config YAML (the whole segmentor or detector it builds)." };
        var size = new Option<string?>("--size") { Description = "Input H[,W] in pixels (default: the model's or config's own test size, see above)." };
        var depth = new Option<int>("--depth") { Description = "Deepest module level shown (0: the model only; 1: its children; …).", DefaultValueFactory = _ => DefaultDepth };
        var jsonOut = new Option<string?>("--json-out") { Description = "Also write the table, totals and operators as JSON to this file (atomically)." };
        var set = ConfigCommand.CreateSetOption();
        var images = new Option<int?>("--images") { Description = "Config TARGET: average over the first N validation images through the test pipeline (per image, all test-time forwards) instead of one random input." };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Config TARGET: load these trained weights first (a detector's proposal and detection counts depend on them)." };
        var command = new Command("flops", Help);
        command.Arguments.Add(target);
        foreach (var option in new Option[] { size, depth, jsonOut, set, images, checkpoint }) command.Options.Add(option);
        command.SetAction(parse =>
        {
            int maxDepth = parse.GetValue(depth);
            if (maxDepth < 0) throw new VimException($"--depth must be 0 or more (0: the model only), got {maxDepth}");
            var requestedSize = ParseSize(parse.GetValue(size));
            if (parse.GetValue(jsonOut) is { } jsonPath) OutputFolder.CheckFile(jsonPath, "--json-out");
            var request = new Request(parse.GetValue(target)!, requestedSize, parse.GetValue(set) ?? [], parse.GetValue(images), parse.GetValue(checkpoint));
            var complexity = Count(request);
            Console.Write(complexity.Table(maxDepth));
            if (parse.GetValue(jsonOut) is { } json)
            {
                complexity.WriteJson(json, maxDepth);
                Console.WriteLine($"written: {json}");
            }
            return 0;
        });
        return command;
    }

    /// <summary>What to count: a registry name or a config, with the options that apply to it.</summary>
    public sealed record Request(string Target, (int Height, int Width)? Size = null, IReadOnlyList<string>? Overrides = null,
        int? Images = null, string? Checkpoint = null);

    /// <summary>Counts a registered model or a config's model as <paramref name="request"/> says.</summary>
    public static ModelComplexity Count(Request request)
    {
        bool isModel = ModelRegistry.All.Any(e => e.Name == request.Target);
        if (!isModel && !IsConfigPath(request.Target))
            throw new VimException($"TARGET '{request.Target}' is neither a registered model ({string.Join(", ", ModelRegistry.All.Select(e => e.Name))}) " +
                "nor a config file (.yaml)");
        if (isModel)
        {
            foreach (var (option, given) in new[] { ("--set", request.Overrides is { Count: > 0 }), ("--images", request.Images is not null), ("--checkpoint", request.Checkpoint is not null) })
                if (given) throw new VimException($"{option} applies to a config TARGET, not to the registered model '{request.Target}'");
            using var model = ModelRegistry.Create(request.Target);
            var (height, width) = request.Size ?? Square(TokenBackboneOf(model).ImageSize);
            return CountAtSize(request, (height, width), images => ModelComplexity.OfForward(model, images, request.Target, Describe(height, width)));
        }
        if (!File.Exists(request.Target))
            throw new VimException($"TARGET '{request.Target}': config file not found");
        if (request.Images is < 1)
            throw new VimException($"--images must be a positive number of validation images, got {request.Images}");
        if (request.Images is not null && request.Size is not null)
            throw new VimException("--size and --images exclude each other: validation images keep the sizes the test pipeline gives them");
        if (request.Checkpoint is not null) CheckpointFile.RequireFile(request.Checkpoint);
        var (config, _) = TrainCommand.Prepare(request.Target, null, request.Overrides ?? []);
        return config.Task == TaskKind.Detection ? CountDetector(config, request) : CountSegmentor(config, request);
    }

    private static ModelComplexity CountSegmentor(ExperimentConfig config, Request request)
    {
        using var segmentor = EncoderDecoder.FromConfig(config, config.Runtime.Seed);
        if (request.Checkpoint is not null) TrainingCheckpoint.LoadWeights(segmentor, request.Checkpoint, ema: false);
        if (request.Images is { } count)
        {
            var data = new SegmentationData(config);
            var paths = FirstImages(data.ValSet.ImagePaths, count, config);
            var pipelines = data.TestPipelines();
            return CountOverImages(segmentor, request.Target, paths, path =>
            {
                var (views, height, width) = SegmentationInference.TestViews(path, pipelines);
                SegmentationInference.Scores(segmentor, views, config.Model.SegTest, height, width);
            });
        }
        var test = config.Model.SegTest;
        // Whole mode sees the image resized into data.scale: a square image comes out at the scale's shorter side.
        var size = request.Size ?? (test.Mode == "whole" ? Square(config.Data.Scale.Min()) : (test.CropSize[0], test.CropSize[^1]));
        return CountAtSize(request, size, images => ModelComplexity.OfForward(segmentor, images, request.Target, Describe(size.Item1, size.Item2)));
    }

    private static ModelComplexity CountDetector(ExperimentConfig config, Request request)
    {
        using var detector = DetectionTask.FromConfig(config);
        if (request.Checkpoint is not null) TrainingCheckpoint.LoadWeights(detector, request.Checkpoint, ema: false);
        detector.eval();
        if (request.Images is { } count)
        {
            var data = new DetectionData(config);
            var paths = FirstImages(data.ValSet.Images.Select(data.ValSet.ImagePath).ToList(), count, config);
            return CountOverImages(detector, request.Target, paths, path => DetectionInference.Predict(detector, path, data.TestSize, test: null, data.TestSteps));
        }
        var (height, width) = request.Size ?? Square(config.Data.CropSize[0]);
        return CountAtSize(request, (height, width), images =>
        {
            using var counter = FlopCounter.Start(detector);
            using (var scope = NewDisposeScope())
                detector.Predict(images, [(height, width)]);
            return ModelComplexity.From(detector, counter, forwards: 1, request.Target, Describe(height, width));
        });
    }

    /// <summary>Runs <paramref name="count"/> on a random-normal image batch of one image (seed 0, as a fixed input
    /// makes the count repeatable), naming --size in the model's refusal of a size it cannot take.</summary>
    private static ModelComplexity CountAtSize(Request request, (int Height, int Width) size, Func<Tensor, ModelComplexity> count)
    {
        using var generator = new TorchSharp.torch.Generator(0);
        using var images = randn([1, 3, size.Height, size.Width], generator: generator);
        try
        {
            return count(images);
        }
        catch (VimException e) when (request.Size is not null)
        {
            throw new VimException($"--size {size.Height},{size.Width}: {request.Target} cannot take this input: {e.Message}", e);
        }
    }

    private static ModelComplexity CountOverImages(nn.Module model, string target, IReadOnlyList<string> paths, Action<string> infer)
    {
        using var noGrad = no_grad();
        model.eval();
        using var counter = FlopCounter.Start(model);
        foreach (var path in paths)
        {
            using var scope = NewDisposeScope();
            infer(path);
        }
        return ModelComplexity.From(model, counter, paths.Count, target,
            $"the first {paths.Count} validation image(s) through the test pipeline, FLOPs per image (every test-time forward of it)");
    }

    private static IReadOnlyList<string> FirstImages(IReadOnlyList<string> paths, int count, ExperimentConfig config)
    {
        if (paths.Count == 0)
            throw new VimException($"--images: the validation split '{config.Data.ValSplit}' under {config.Data.Root} has no images");
        if (count > paths.Count)
            throw new VimException($"--images {count}: the validation split '{config.Data.ValSplit}' has only {paths.Count} images");
        return paths.Take(count).ToList();
    }

    /// <summary>"H" or "H,W" as positive pixel counts; null when not given.</summary>
    public static (int Height, int Width)? ParseSize(string? text)
    {
        if (text is null) return null;
        var parts = text.Split(',');
        var sides = parts.Select(p => int.TryParse(p.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
        if (parts.Length is < 1 or > 2 || sides.Any(s => s is < 1 or > MaxSide))
            throw new VimException($"--size must be H or H,W in pixels (1 to {MaxSide} each), got '{text}'");
        return (sides[0], sides[^1]);
    }

    private static bool IsConfigPath(string target) =>
        target.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || target.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);

    private static ITokenBackbone TokenBackboneOf(nn.Module model) =>
        model as ITokenBackbone ?? model.modules().OfType<ITokenBackbone>().FirstOrDefault()
        ?? throw new VimException($"{model.GetType().Name} has no token backbone to take its input size from; give --size");

    private static (int, int) Square(int side) => (side, side);

    private static string Describe(int height, int width) => $"1×3×{height}×{width} (random normal, seed 0)";
}
