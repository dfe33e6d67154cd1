using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Coco;
using Vim.Data.Prediction;
using Vim.Data.Transforms;

namespace Vim.Detection;

/// <summary>
/// A trained detector for use from .NET code (mmdet's <c>init_detector</c> + <c>inference_detector</c>, or
/// <c>DetInferencer</c>): <see cref="Load(string, string, ModelLoadOptions?)"/> opens the config and checkpoint `vim infer` takes, and each <c>Predict</c>
/// runs an image through it as `vim infer` does (data.test_pipeline or the test resize at data.crop_size, test-time augmentation as
/// model.det_test says, detections at the original size above model.det_head.test_score_threshold), returning plain
/// managed results. `vim infer` itself predicts through this class.
/// <para>
/// Thread safety: an instance may be shared between threads (e.g. one per ASP.NET service); its predictions run one at a
/// time, under a lock (<see cref="ImagePredictor{TModel, TResult, TRequest}"/>). For predictions in parallel, load one instance per thread
/// (libtorch already spreads each forward over runtime.threads cores).
/// </para>
/// <para>
/// Batches (a list with <c>batchSize</c> above 1, the <c>batch_size</c> of mmdet's <c>DetInferencer</c> call): every image that fits the
/// backbone's square is padded to that square anyway (<see cref="CascadeMaskRcnn.InputSize"/>), so images of any sizes
/// share a batch and each gets the result it gets alone (<see cref="DetectionInference.InputShape"/>).
/// </para>
/// </summary>
public sealed class Detector : ImagePredictor<CascadeMaskRcnn, ImageDetections, DetectionRequest>
{
    private readonly DetectionTestConfig _test;
    private readonly IReadOnlyList<TransformPipeline> _pipelines;

    /// <summary>
    /// A detector around a model already built and loaded (e.g. trained in this process); the model is put in eval mode
    /// for each prediction and left as it was. <paramref name="ownsModel"/>: <see cref="Dispose"/> disposes it too.
    /// </summary>
    /// <param name="categories">The dataset's categories, one per model class, in class order.</param>
    /// <param name="testSize">The test resize target (the config's data.crop_size[0]).</param>
    /// <param name="test">model.det_test (default: one plain pass).</param>
    /// <param name="testPipeline">data.test_pipeline of the config as <see cref="DataPipelines.TestSteps"/> binds it (steps built in code are checked here as the config's are); null: the recipe's resize into <paramref name="testSize"/>.</param>
    public Detector(CascadeMaskRcnn model, CategoryMap categories, int testSize, DetectionTestConfig? test = null, bool ownsModel = false,
        IReadOnlyList<TransformStepConfig>? testPipeline = null)
        : base(model, ownsModel)
    {
        ArgumentNullException.ThrowIfNull(categories);
        if (testSize <= 0) throw new VimException($"detection test size (data.crop_size) must be positive, got {testSize}");
        if (categories.Count != model.RoiHeads.Settings.NumClasses)
            throw new VimException($"the detector has {model.RoiHeads.Settings.NumClasses} classes but {categories.Count} category names were given");
        test ??= new DetectionTestConfig();
        if (testPipeline is not null) DataPipelines.CheckTestSteps(testPipeline, TaskKind.Detection, test.Scales);
        _pipelines = DetectionTestTimeAugmentation.TestPipelines(testSize, test, testPipeline);
        (Categories, TestSize, _test) = (categories, testSize, test);
    }

    /// <summary>
    /// Opens a trained detector: <paramref name="configPath"/> (the YAML it was trained with) with the options' overrides and
    /// device, and <paramref name="checkpointPath"/> (a `vim train` checkpoint, whose checksums are verified, or a `vim
    /// checkpoint publish`ed file; its EMA weights with <see cref="ModelLoadOptions.Ema"/>). Category ids and names come
    /// from the config's training annotation file (<see cref="DetectionData.CategoriesForInference"/>). A missing or
    /// unreadable file, a segmentation config, or weights that do not fit are refused with a <see cref="VimException"/> naming the file.
    /// </summary>
    public static Detector Load(string configPath, string checkpointPath, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        return Load(TrainedModelSource.LoadConfig(configPath, checkpointPath, TaskKind.Detection, options), checkpointPath, options.Ema, options.Log);
    }

    /// <summary>
    /// Opens a trained detector from a config already loaded (<see cref="ExperimentConfig.Load"/>, or built in code) and
    /// <paramref name="checkpointPath"/>, as <see cref="Load(string, string, ModelLoadOptions?)"/> does after reading the
    /// file; the model goes to the config's runtime.device (its runtime.threads is not applied here).
    /// </summary>
    /// <param name="ema">Take the checkpoint's EMA weights.</param>
    /// <param name="log">Where notes go; null discards them.</param>
    public static Detector Load(ExperimentConfig config, string checkpointPath, bool ema = false, TextWriter? log = null) =>
        Open(config, TaskKind.Detection, checkpointPath, ema, () => DetectionData.CategoriesForInference(config, log), () => DetectionTask.FromConfig(config),
            (model, categories, testSteps) => new Detector(model, categories, config.Data.CropSize[0], config.Model.DetTest, ownsModel: true, testSteps));

    /// <summary>The dataset's categories, one per class index (COCO ids and names).</summary>
    public CategoryMap Categories { get; }

    /// <summary>The side images are resized into before the model sees them (data.crop_size[0]) where data.test_pipeline is unset.</summary>
    public int TestSize { get; }

    /// <inheritdoc/>
    protected override PreparedImage Prepare(byte[] rgb, int height, int width, string name) =>
        PreparedImage.Prepare(rgb, height, width, name, _pipelines);

    /// <inheritdoc/>
    /// <remarks>The input size depends on the backbone's fixed square, not on weights: safe outside the lock.</remarks>
    protected override BatchShape ShapeOf(CascadeMaskRcnn model, PreparedImage image) => DetectionInference.InputShape(model, image, _test);

    /// <inheritdoc/>
    protected override void CheckRequest(DetectionRequest? request) => request?.Check();

    /// <summary>
    /// Sliced prediction (<see cref="DetectionRequest.Slicing"/>): the image's patches, and with
    /// <see cref="DetectionSlicing.IncludeFullImage"/> the whole image, each prepared and predicted as an image of its own,
    /// <paramref name="batchSize"/> at a time (the patches share one size, so they share batches), then merged
    /// (<see cref="SlicedDetection.Merge"/>). Patches are cut and prepared as batches need them, not all at once.
    /// </summary>
    protected override bool TryPredictComposite(byte[] rgb, int height, int width, string name, DetectionRequest? request, int batchSize,
        out ImageDetections result)
    {
        if (request?.Slicing is not { } slicing)
        {
            result = null!;
            return false;
        }
        var patches = SlicedDetection.Patches(height, width, slicing);
        var whole = new ImagePatch(0, 0, width, height);
        // An image within one patch is already predicted whole: predicting it again would only pool duplicates.
        var inputs = slicing.IncludeFullImage && !patches.Contains(whole) ? [.. patches, whole] : patches;
        var found = PredictPrepared(inputs.Select(patch => patch == whole
            ? Prepare(rgb, height, width, name)
            : Prepare(SlicedDetection.Crop(rgb, height, width, patch), patch.Height, patch.Width, $"{name}, patch {patch}")),
            request with { Slicing = null }, batchSize);
        result = SlicedDetection.Merge(inputs.Select((patch, i) => (patch, found[i])).ToList(), height, width, slicing, request.MinScore);
        return true;
    }

    /// <inheritdoc/>
    protected override IReadOnlyList<ImageDetections> PredictBatch(CascadeMaskRcnn model, IReadOnlyList<PreparedImage> batch, DetectionRequest? request) =>
        DetectionInference.Predict(model, batch, _test).Select(found => ImageDetections.FromInstances(found, Categories, request?.MinScore ?? 0)).ToList();
}
