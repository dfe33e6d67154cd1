using System.Globalization;
using Vim.Core;
using Vim.Core.Config;

namespace Vim.Data.Transforms;

/// <summary>
/// The one place that picks a task's data pipelines: data.train_pipeline / data.test_pipeline where a config sets them
/// (MMDetection's and MMSegmentation's train_pipeline / test_pipeline), otherwise the task's official recipe
/// (<see cref="TransformPipeline"/>'s factories at data.crop_size, data.scale and model.seg_head.ignore_index). It also binds
/// the configured steps and refuses, before any data is read and naming the key and the step, a pipeline the loader or the
/// model cannot run: every loader, test view and drawing of `vim data browse` is built through it.
/// </summary>
public static class DataPipelines
{
    public const string TrainKey = "data.train_pipeline";
    public const string TestKey = "data.test_pipeline";

    /// <summary>The training pipeline data.pipeline_switch gives for the end of the run (<see cref="PipelineSwitch"/>).</summary>
    public const string SwitchedTrainKey = PipelineSwitch.Key + ".train_pipeline";

    /// <summary>data.train_pipeline bound and checked against the config's task; null where unset (the recipe).</summary>
    public static IReadOnlyList<TransformStepConfig>? TrainSteps(ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return TrainSteps(config, config.Data.TrainPipeline, TrainKey);
    }

    private static List<TransformStepConfig>? TrainSteps(ExperimentConfig config, ConfigList? written, string key)
    {
        var steps = Bind(written, key);
        if (steps is null) return steps;
        var origin = new StepsOrigin(key, written);
        CheckSteps(steps, origin, config.Task, testing: false, config.Model.SegHead.IgnoreIndex);
        if (MixingKeys(config, key) is { Count: > 0 } mixing) CheckAffineOutsideRandomChoice(steps, origin, mixing);
        if (config.Task == TaskKind.Detection && !config.Model.DetHead.MaskOn) RefuseMaskFilterWithoutMasks(steps, origin);
        return steps;
    }

    /// <summary>
    /// A box-only detector's samples carry no masks, so a filter_annotations by_mask (mmdet asserts gt_masks) would fail on
    /// the first sample, deep in a loader thread: refused now, at its line.
    /// </summary>
    private static void RefuseMaskFilterWithoutMasks(IReadOnlyList<TransformStepConfig> steps, StepsOrigin origin)
    {
        for (int i = 0; i < steps.Count; i++)
        {
            if (steps[i].FilterAnnotations is { ByMask: true })
                throw new VimException($"{origin.Step(i)}: filter_annotations by_mask reads the objects' masks, but model.det_head.mask_on is false, so the " +
                    "training samples carry none; set by_mask: false (filtering by_box), or model.det_head.mask_on: true");
            if (steps[i].RandomChoice?.Transforms is { } branches)
                for (int b = 0; b < branches.Count; b++)
                    if (branches[b] is { } branch) RefuseMaskFilterWithoutMasks(branch, origin.Branch(i, b));
        }
    }

    /// <summary>The mixing keys (data.mosaic, data.mixup, data.copy_paste) in force while the pipeline <paramref name="key"/> runs.</summary>
    private static List<string> MixingKeys(ExperimentConfig config, string key)
    {
        var data = config.Data;
        var change = PipelineSwitch.Read(config);
        var keys = new List<string>();
        void Add(string name, object? before, object? after)
        {
            if (key == SwitchedTrainKey) { if (after is not null) keys.Add($"{PipelineSwitch.Key}.{name}"); }
            // The first pipeline runs before the switch, and after it too when the switch names no train_pipeline of its own.
            else if (before is not null) keys.Add($"data.{name}");
            else if (change is { TrainPipeline.Named: false } && after is not null) keys.Add($"{PipelineSwitch.Key}.{name}");
        }
        Add("mosaic", data.Mosaic, change?.Mosaic.After(data.Mosaic) ?? data.Mosaic);
        Add("mixup", data.MixUp, change?.MixUp.After(data.MixUp) ?? data.MixUp);
        Add("copy_paste", data.CopyPaste, change?.CopyPaste.After(data.CopyPaste) ?? data.CopyPaste);
        return keys;
    }

    /// <summary>
    /// The loader mixes samples before the pipeline's first top-level random_affine (mmdet's Mosaic → RandomAffine → MixUp);
    /// one inside a random_choice would silently run before the mixing instead, on each tile and partner, so it is refused.
    /// </summary>
    private static void CheckAffineOutsideRandomChoice(IReadOnlyList<TransformStepConfig> steps, StepsOrigin origin, List<string> mixing, bool inRandomChoice = false)
    {
        for (int i = 0; i < steps.Count; i++)
        {
            if (inRandomChoice && steps[i].RandomAffine is not null)
                throw new VimException($"{origin.Step(i)}: random_affine inside random_choice cannot be used with {string.Join(", ", mixing)}: the loader mixes " +
                    "samples before the pipeline's first top-level random_affine (mmdet's Mosaic → RandomAffine → MixUp), and one inside random_choice would " +
                    "run on each sample before it is mixed; move random_affine out of random_choice, after it");
            if (steps[i].RandomChoice?.Transforms is { } branches)
                for (int b = 0; b < branches.Count; b++)
                    if (branches[b] is { } branch) CheckAffineOutsideRandomChoice(branch, origin.Branch(i, b), mixing, inRandomChoice: true);
        }
    }

    /// <summary>
    /// data.test_pipeline bound and checked against the config's task and its test scales; null where unset (the recipe).
    /// The one place the test pipeline is checked: what it returns is handed to the test views' builders
    /// (<see cref="DetectionTesting"/>, <see cref="SegmentationTesting"/> and the tasks' TestPipelines), which do not check again.
    /// </summary>
    public static IReadOnlyList<TransformStepConfig>? TestSteps(ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var written = config.Data.TestPipeline;
        var steps = Bind(written, TestKey);
        if (steps is not null) CheckTestSteps(steps, new StepsOrigin(TestKey, written), config.Task, TestRatios(config));
        return steps;
    }

    /// <summary>
    /// Both pipelines of the config, and data.pipeline_switch's training pipeline, checked (`vim config show`, every task's data and every predictor call it before reading
    /// files); returns data.test_pipeline's checked steps (<see cref="TestSteps"/>), for the caller to keep and build its test
    /// views from.
    /// </summary>
    public static IReadOnlyList<TransformStepConfig>? Check(ExperimentConfig config)
    {
        TrainSteps(config);
        // The switched pipeline runs hours into training: refused now, by the same rules, naming its own key.
        if (PipelineSwitch.Read(config)?.TrainPipeline is { Value: { } switched }) TrainSteps(config, switched, SwitchedTrainKey);
        return TestSteps(config);
    }

    /// <summary>The training pipeline of the config's task: data.train_pipeline, else the task's recipe.</summary>
    public static TransformPipeline Training(ExperimentConfig config)
    {
        var steps = TrainSteps(config);
        if (steps is not null) return TransformPipeline.FromConfig(steps, TrainKey);
        var data = config.Data;
        return config.Task == TaskKind.Detection
            ? TransformPipeline.DetectionLsjTraining(data.CropSize[0])
            : TransformPipeline.SegmentationTraining(data.CropSize[0], data.CropSize[1], data.Scale[0], data.Scale[1], config.Model.SegHead.IgnoreIndex);
    }

    /// <summary>
    /// Segmentation's test pipeline of one model.seg_test.scales ratio: <paramref name="steps"/> (data.test_pipeline) with
    /// its resize scaled by the ratio, else the recipe's keep-ratio resize into <paramref name="scale"/> (data.scale) × the
    /// ratio, truncated to whole pixels as mmseg's MultiScaleFlipAug derives it.
    /// </summary>
    public static TransformPipeline SegmentationTesting(IReadOnlyList<TransformStepConfig>? steps, IReadOnlyList<int> scale, double ratio)
    {
        if (steps is not null) return Scaled(steps, ratio, SegmentationRatiosKey);
        int longEdge = (int)(scale[0] * ratio), shortEdge = (int)(scale[1] * ratio);
        if (longEdge <= 0 || shortEdge <= 0)
            throw new VimException($"{SegmentationRatiosKey}: ratio {Text(ratio)} of data.scale [{scale[0]}, {scale[1]}] leaves no pixel ({longEdge}x{shortEdge})");
        return TransformPipeline.SegmentationTesting(longEdge, shortEdge);
    }

    /// <summary>
    /// Detection's test pipeline of one model.det_test.scales ratio: <paramref name="steps"/> (data.test_pipeline) with its
    /// resize scaled by the ratio, else the recipe's resize into the square of <paramref name="testSize"/> (data.crop_size) ×
    /// the ratio, truncated to whole pixels.
    /// </summary>
    public static TransformPipeline DetectionTesting(IReadOnlyList<TransformStepConfig>? steps, int testSize, double ratio) =>
        steps is not null ? Scaled(steps, ratio, DetectionRatiosKey) : TransformPipeline.DetectionTesting((int)(testSize * ratio));

    /// <summary>
    /// Refuses test steps predictions cannot be mapped back from: a test pipeline may resize (to one scale), normalize, change
    /// pixels the same way every time (adjust_gamma, clahe, rgb2gray) and, for detection, pad. Predictions are mapped to the original image through the view's size alone (segmentation resizes
    /// its logits to the original size, detection scales its boxes by original / content size), so a crop, flip or random
    /// draw would misplace them, and padding would be resized into a segmentation's prediction. Each ratio of
    /// <paramref name="ratios"/> other than 1 scales the one resize step, so it needs exactly one.
    /// </summary>
    public static void CheckTestSteps(IReadOnlyList<TransformStepConfig> steps, TaskKind task, IReadOnlyList<double> ratios) =>
        CheckTestSteps(steps, new StepsOrigin(TestKey, Written: null), task, ratios);

    private static void CheckTestSteps(IReadOnlyList<TransformStepConfig> steps, StepsOrigin origin, TaskKind task, IReadOnlyList<double> ratios)
    {
        ArgumentNullException.ThrowIfNull(steps);
        ArgumentNullException.ThrowIfNull(ratios);
        CheckSteps(steps, origin, task, testing: true, ignoreIndex: null);
        bool detection = task == TaskKind.Detection;
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (step.Normalize is not null || step.AdjustGamma is not null || step.Clahe is not null || step.Rgb2Gray is not null
                || (step.Pad is not null && detection)) continue;
            if (step.Resize is { } resize)
            {
                if (resize.RatioRange is null && resize.Scales.Count == 1) continue;
                throw new VimException($"{origin.Step(i)}: resize with {(resize.RatioRange is null ? "several scales" : "ratio_range")} draws a size at random; " +
                    $"a test resize has one scale and no ratio_range (several test sizes: {RatiosKey(task)})");
            }
            if (step.ResizeShortestEdge is { } shortest)
            {
                if (shortest.SingleLength) continue;
                throw new VimException($"{origin.Step(i)}: resize_shortest_edge with short_edge_length [{string.Join(", ", shortest.ShortEdgeLength!)}] draws " +
                    $"a size at random; a test resize_shortest_edge has one length, as detectron2's test ResizeShortestEdge(800, 1333) (several test sizes: {RatiosKey(task)})");
            }
            var name = StepName(step);
            if (step.FilterAnnotations is not null)
                throw new VimException($"{origin.Step(i)}: filter_annotations cannot be a test step: it filters the ground-truth objects training learns from, " +
                    "and evaluation reads its ground truth from the annotation file, whole (mmdet's test pipelines have no FilterAnnotations); move it to " + TrainKey);
            var why = name == "pad"
                ? "segmentation resizes each prediction, whole, back to the original image, so padding would be stretched into it"
                : "predictions are mapped back to the original image through the test view's size alone, so a crop, flip or random draw would " +
                  $"misplace them (test-time flips: {FlipKey(task)}, `vim test --tta`)";
            throw new VimException($"{origin.Step(i)}: {name} cannot be a test step; a {(detection ? "detection" : "segmentation")} test pipeline may resize " +
                $"(one scale, or resize_shortest_edge with one length), normalize, adjust_gamma, clahe, rgb2gray{(detection ? " and pad" : "")}: {why}");
        }
        if (ratios.Any(ratio => ratio != 1.0) && steps.Count(s => s.Resize is not null || s.ResizeShortestEdge is not null) is var resizes && resizes != 1)
            throw new VimException($"{origin.Whole}: {RatiosKey(task)} [{string.Join(", ", ratios.Select(Text))}] scale the resize step of {TestKey}, which has " +
                $"{(resizes == 0 ? "none" : $"{resizes}")}; give it one resize (or resize_shortest_edge) step, or test at the one scale [1.0]");
        // A larger ratio grows the resize but not a pad's fixed size.
        foreach (var ratio in ratios.Where(ratio => ratio != 1.0).Distinct())
            CheckPadSizes(ScaledSteps(steps, ratio, RatiosKey(task)), origin, $" at {RatiosKey(task)} ratio {Text(ratio)}");
    }

    private const string SegmentationRatiosKey = "model.seg_test.scales";
    private const string DetectionRatiosKey = "model.det_test.scales";

    private static string RatiosKey(TaskKind task) => task == TaskKind.Detection ? DetectionRatiosKey : SegmentationRatiosKey;

    private static string FlipKey(TaskKind task) => task == TaskKind.Detection ? "model.det_test.flip" : "model.seg_test.flip";

    private static IReadOnlyList<double> TestRatios(ExperimentConfig config) =>
        config.Task == TaskKind.Detection ? config.Model.DetTest.Scales : config.Model.SegTest.Scales;

    private static List<TransformStepConfig>? Bind(ConfigList? steps, string key)
    {
        if (steps is null) return null;
        if (steps.Items.Count == 0)
            throw new VimException($"{steps.Source}: {key} is empty; list its steps, or leave it out (null) for the task's official recipe");
        return ConfigBinder.Bind<List<TransformStepConfig>>(steps, key);
    }

    /// <summary>
    /// What every configured pipeline must give the loader: each step buildable (its options checked by the transform), one
    /// normalize (the loader batches its float image, <see cref="Datasets.DataSample.NormalizedImage"/>) followed by nothing
    /// but pad (every other step works on the 8-bit image), a pad to a fixed size only after steps that bound the size below
    /// it (pad cannot shrink an image, so it would fail on the first larger one, deep in a loader thread), and for
    /// segmentation the ignore index where steps write or skip unlabelled pixels.
    /// </summary>
    private static void CheckSteps(IReadOnlyList<TransformStepConfig> steps, StepsOrigin origin, TaskKind task, bool testing, int? ignoreIndex)
    {
        CheckEachStep(steps, origin, task, inRandomChoice: false);
        int normalize = -1;
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (normalize >= 0 && step.Pad is null)
                throw new VimException($"{origin.Step(i)}: {StepName(step)} comes after normalize ({origin.Key}[{normalize}]), but only pad works on the " +
                    "normalised image; move it before normalize");
            if (step.Normalize is not null) normalize = i;
        }
        if (normalize < 0)
            throw new VimException($"{origin.Whole} has no normalize step: the model reads the normalised image it makes; add `- normalize: {{}}` (ImageNet mean and std) " +
                "after the other steps (only pad may follow it)");
        CheckPadSizes(steps, origin, scaledBy: "");
        if (task == TaskKind.Segmentation && !testing && ignoreIndex is { } ignore) CheckIgnoreIndex(steps, origin, ignore);
    }

    /// <summary>
    /// Each step builds and suits the task, and so does each step of a random_choice's sub-pipelines, checked first so
    /// that errors name the sub-step's own line; a sub-pipeline may not normalize (the one normalize ends the pipeline itself).
    /// </summary>
    private static void CheckEachStep(IReadOnlyList<TransformStepConfig> steps, StepsOrigin origin, TaskKind task, bool inRandomChoice)
    {
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (step.RandomChoice?.Transforms is { } branches)
                for (int b = 0; b < branches.Count; b++)
                    if (branches[b] is { } branch) CheckEachStep(branch, origin.Branch(i, b), task, inRandomChoice: true);
            step.Create(origin.Step(i));
            if (inRandomChoice && step.Normalize is not null)
                throw new VimException($"{origin.Step(i)}: normalize cannot be inside random_choice; every sample is normalised once, by the pipeline's own " +
                    "normalize step after the random_choice");
            if (task == TaskKind.Segmentation && step.RandomAffine is not null)
                throw new VimException($"{origin.Step(i)}: random_affine is a detection step (mmdet's RandomAffine) and has no fill for label maps; " +
                    "rotate segmentation samples with random_rotate");
            if (task == TaskKind.Segmentation && step.FilterAnnotations is not null)
                throw new VimException($"{origin.Step(i)}: filter_annotations is a detection step (mmdet's FilterAnnotations) and filters objects, which " +
                    "segmentation samples have none of (their label maps are cropped, not filtered)");
        }
    }

    /// <summary>How errors name a pipeline's steps: the key and index, after the file and line where the config wrote them.</summary>
    private sealed record StepsOrigin(string Key, ConfigList? Written)
    {
        public string Step(int index) => Written is { } list ? $"{list.Items[index].Source}: {Key}[{index}]" : $"{Key}[{index}]";

        public string Whole => Written is { } list ? $"{list.Source}: {Key}" : Key;

        /// <summary>Sub-pipeline <paramref name="branch"/> of the random_choice step at <paramref name="index"/>, with its own lines where written.</summary>
        public StepsOrigin Branch(int index, int branch) =>
            new($"{Key}[{index}].random_choice.transforms[{branch}]",
                Written?.Items[index] is ConfigMap step && step["random_choice"] is ConfigMap choice && choice["transforms"] is ConfigList branches
                    && branch < branches.Items.Count && branches.Items[branch] is ConfigList written ? written : null);
    }

    /// <summary>
    /// Follows the largest size each step can hand on (unbounded until a resize or crop bounds it) and refuses a pad to a
    /// fixed size that a larger image could reach.
    /// </summary>
    private static (int Height, int Width)? CheckPadSizes(IReadOnlyList<TransformStepConfig> steps, StepsOrigin origin, string scaledBy,
        (int Height, int Width)? largest = null, string boundBy = "")
    {
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            (int, int)? next = largest;
            if (step.Resize is { } resize)
            {
                double grow = resize.RatioRange?[1] ?? 1;
                var scaled = resize.Scales.Select(s => ((int)(s[0] * grow), (int)(s[1] * grow))).ToList();
                // A keep-ratio resize fits the long side into the scale's longer number; otherwise width = scale[0], height = scale[1].
                next = resize.KeepRatio
                    ? (scaled.Max(s => Math.Max(s.Item1, s.Item2)), scaled.Max(s => Math.Max(s.Item1, s.Item2)))
                    : (scaled.Max(s => s.Item2), scaled.Max(s => s.Item1));
            }
            else if (step.ResizeShortestEdge is { } shortest)
                // The long side is capped at max_size, the short one no longer than it; without a cap, any size.
                next = shortest.MaxSize is { } cap ? (cap, cap) : null;
            else if (step.ResizeScale is { } jitter)
                next = ((int)Math.Ceiling(jitter.TargetHeight * jitter.MaxScale), (int)Math.Ceiling(jitter.TargetWidth * jitter.MaxScale));
            else if (step.RandomCrop is { } crop)
                next = crop.CropType switch
                {
                    CropType.Absolute => Smaller(largest, (crop.Height, crop.Width)),
                    CropType.AbsoluteRange when crop.SizeRange is [_, var max] => Smaller(largest, (max, max)),
                    _ => largest, // a fraction of the image
                };
            else if (step.RandomChoice?.Transforms is { } branches)
            {
                // Whichever sub-pipeline runs, the sample leaves it no larger than the largest any of them can hand on.
                var reached = branches.Select((branch, b) => CheckPadSizes(branch, origin.Branch(i, b), scaledBy, largest, boundBy)).ToList();
                next = reached.Any(size => size is null) ? null : (reached.Max(size => size!.Value.Height), reached.Max(size => size!.Value.Width));
            }
            else if (step.RandomRotate is { AutoBound: true })
                // mmcv's auto_bound canvas holds the turned image: at most its diagonal on either side.
                next = largest is { } size ? Diagonal(size) : null;
            else if (step.RandomAffine is { Border: [var x, var y] })
                // After a mix transform its input is the mixed image, whose size the pipeline does not know.
                next = x == 0 && y == 0 ? largest : null;
            else if (step.FixedSizeCrop is { } fixedCrop)
                next = fixedCrop.Pad ? (fixedCrop.Height, fixedCrop.Width) : Smaller(largest, (fixedCrop.Height, fixedCrop.Width));
            else if (step.Pad is { } pad)
            {
                if (pad.Size is [int height, int width])
                {
                    if (largest is not { } size || size.Height > height || size.Width > width)
                        throw new VimException($"{origin.Step(i)}: pad to size [{height}, {width}] can receive " +
                            (largest is { } reach ? $"images up to {reach.Width}x{reach.Height} (after {boundBy}{scaledBy})" : "images of any size") +
                            $", and pad cannot shrink one: crop to at most {width}x{height} before it (random_crop or fixed_size_crop), or pad with size_divisor");
                    next = (height, width);
                }
                else if (largest is { } size && pad.SizeDivisor is int divisor)
                    next = (RoundUp(size.Height, divisor), RoundUp(size.Width, divisor));
            }
            if (next != largest) boundBy = $"{origin.Key}[{i}]";
            largest = next;
        }
        return largest;
    }

    private static (int Height, int Width) Smaller((int Height, int Width)? largest, (int Height, int Width) crop) =>
        largest is { } size ? (Math.Min(size.Height, crop.Height), Math.Min(size.Width, crop.Width)) : crop;

    private static (int Height, int Width) Diagonal((int Height, int Width) size)
    {
        int side = (int)Math.Ceiling(Math.Sqrt((double)size.Height * size.Height + (double)size.Width * size.Width));
        return (side, side);
    }

    private static int RoundUp(int value, int divisor) => (value + divisor - 1) / divisor * divisor;

    /// <summary>
    /// Segmentation steps that write or skip unlabelled pixels (pad, a padding fixed_size_crop, random_rotate's corners,
    /// random_crop's balance) must use model.seg_head.ignore_index: a label padded with
    /// another value would train as that class (or, past the class count, fail in the loss), and a crop balanced by another
    /// would count unlabelled pixels as a class.
    /// </summary>
    private static void CheckIgnoreIndex(IReadOnlyList<TransformStepConfig> steps, StepsOrigin origin, int ignoreIndex)
    {
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            var (option, value) = step switch
            {
                { Pad: { } pad } => ("seg_pad_value", pad.SegPadValue),
                { FixedSizeCrop: { Pad: true } crop } => ("seg_pad_value", crop.SegPadValue),
                { RandomCrop: { } crop } => ("ignore_index", crop.IgnoreIndex),
                { RandomRotate: { } rotate } => ("seg_pad_val", rotate.SegPadVal),
                _ => ("", ignoreIndex),
            };
            if (step.RandomChoice?.Transforms is { } branches)
                for (int b = 0; b < branches.Count; b++) CheckIgnoreIndex(branches[b], origin.Branch(i, b), ignoreIndex);
            if (value != ignoreIndex)
                throw new VimException($"{origin.Step(i)}: {StepName(step)}'s {option} is {value}, but model.seg_head.ignore_index is {ignoreIndex}; " +
                    $"set {option}: {ignoreIndex}, so that the pixels it marks are ignored by the loss");
        }
    }

    /// <summary>The configured steps with every resize scale × <paramref name="ratio"/> (truncated to whole pixels), built.</summary>
    private static TransformPipeline Scaled(IReadOnlyList<TransformStepConfig> steps, double ratio, string ratiosKey) =>
        TransformPipeline.FromConfig(ratio == 1.0 ? steps : ScaledSteps(steps, ratio, ratiosKey), TestKey);

    private static List<TransformStepConfig> ScaledSteps(IReadOnlyList<TransformStepConfig> steps, double ratio, string ratiosKey) =>
        steps.Select((step, i) =>
        {
            if (step.ResizeShortestEdge is { } shortest)
            {
                int Scale(int size, string option)
                {
                    int scaled = (int)(size * ratio);
                    if (scaled <= 0)
                        throw new VimException($"{ratiosKey}: ratio {Text(ratio)} of {TestKey}[{i}]'s resize_shortest_edge {option} {size} leaves no pixel ({scaled})");
                    return scaled;
                }
                return new TransformStepConfig
                {
                    ResizeShortestEdge = shortest with
                    {
                        ShortEdgeLength = shortest.ShortEdgeLength!.Select(length => Scale(length, "short_edge_length")).ToArray(),
                        MaxSize = shortest.MaxSize is { } cap ? Scale(cap, "max_size") : null,
                    },
                };
            }
            if (step.Resize is not { } resize) return step;
            var scales = resize.Scales.Select(scale =>
            {
                var sizes = scale.Select(side => (int)(side * ratio)).ToArray();
                if (sizes.Any(side => side <= 0))
                    throw new VimException($"{ratiosKey}: ratio {Text(ratio)} of {TestKey}[{i}]'s resize scale [{string.Join(", ", scale)}] leaves no pixel " +
                        $"([{string.Join(", ", sizes)}])");
                return sizes;
            }).ToList();
            return new TransformStepConfig { Resize = resize with { Scales = scales } };
        }).ToList();

    /// <summary>How the config names a step: the key of its one transform (e.g. random_crop).</summary>
    private static string StepName(TransformStepConfig step) =>
        ConfigBinder.KeysOf(typeof(TransformStepConfig)).Where(k => k.Property.GetValue(step) is not null).Select(k => k.Key).FirstOrDefault() ?? "an empty step";

    private static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);
}
