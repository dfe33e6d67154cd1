using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>Runs transforms in order; also provides the two official training/testing recipes.</summary>
public sealed class TransformPipeline : ISampleTransform
{
    private readonly ISampleTransform[] _steps;

    public TransformPipeline(params IEnumerable<ISampleTransform> steps) => _steps = steps.ToArray();

    public IReadOnlyList<ISampleTransform> Steps => _steps;

    /// <summary>Builds a pipeline from YAML-form steps; <paramref name="where"/> (e.g. the file the steps came from) prefixes errors.</summary>
    public static TransformPipeline FromConfig(IReadOnlyList<TransformStepConfig> steps, string where) =>
        new(steps.Select((step, i) => step.Create($"{where}[{i}]")));

    public void Apply(DataSample sample, Random random)
    {
        foreach (var step in _steps) step.Apply(sample, random);
    }

    /// <summary>
    /// mmseg ADE20k training: Resize (2048·r, 512·r) r∈[0.5, 2] keep ratio, RandomCrop crop×crop with
    /// cat_max_ratio 0.75, flip ½, PhotoMetricDistortion, Normalize, Pad to the crop (labels with the ignore index, 255 by default).
    /// </summary>
    public static TransformPipeline SegmentationTraining(int cropHeight = 512, int cropWidth = 512, int longEdge = 2048, int shortEdge = 512,
        int ignoreIndex = SegmentationFolderDataset.DefaultIgnoreIndex) =>
        new(
            new Resize(new ResizeOptions { Scales = [[longEdge, shortEdge]], RatioRange = [0.5, 2.0] }),
            new RandomCrop(new RandomCropOptions { Height = cropHeight, Width = cropWidth, CatMaxRatio = 0.75, IgnoreIndex = ignoreIndex }),
            new RandomFlip(new RandomFlipOptions { Prob = 0.5 }),
            new PhotoMetricDistortion(new PhotoMetricDistortionOptions()),
            new Normalize(new NormalizeOptions()),
            new Pad(new PadOptions { Size = [cropHeight, cropWidth], PadValue = 0, SegPadValue = ignoreIndex }));

    /// <summary>mmseg ADE20k testing: keep-ratio resize into (2048, 512), Normalize (the model slides windows).</summary>
    public static TransformPipeline SegmentationTesting(int longEdge = 2048, int shortEdge = 512) =>
        new(
            new Resize(new ResizeOptions { Scales = [[longEdge, shortEdge]] }),
            new Normalize(new NormalizeOptions()));

    /// <summary>ViTDet LSJ training: flip ½, ResizeScale 0.1–2.0 of size², FixedSizeCrop size (no pad), Normalize.</summary>
    public static TransformPipeline DetectionLsjTraining(int size = 1024) =>
        new(
            new RandomFlip(new RandomFlipOptions { Prob = 0.5 }),
            new ResizeScale(new ResizeScaleOptions { MinScale = 0.1, MaxScale = 2.0, TargetHeight = size, TargetWidth = size }),
            new FixedSizeCrop(new FixedSizeCropOptions { Height = size, Width = size, Pad = false }),
            new Normalize(new NormalizeOptions()));

    /// <summary>ViTDet testing: ResizeShortestEdge(size, max size) = keep-ratio fit into (size, size) with Pillow's resampling, Normalize.</summary>
    public static TransformPipeline DetectionTesting(int size = 1024) =>
        new(
            new Resize(new ResizeOptions { Scales = [[size, size]], Resampling = ImageResampling.PillowBilinear }),
            new Normalize(new NormalizeOptions()));
}
