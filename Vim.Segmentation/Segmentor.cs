using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Prediction;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Segmentation;

/// <summary>
/// A trained segmentor for use from .NET code (mmseg's <c>init_model</c> + <c>inference_model</c>, or
/// <c>MMSegInferencer</c>): <see cref="Load(string, string, ModelLoadOptions?)"/> opens the config and checkpoint `vim infer` takes, and each <c>Predict</c>
/// segments an image as evaluation does (data.test_pipeline or the test resize of data.scale, whole image or sliding window, flip and scales
/// as model.seg_test says, logits resized to the original size), returning plain managed results. `vim infer` itself
/// segments through this class.
/// <para>
/// Thread safety: an instance may be shared between threads; its predictions run one at a time, under a lock
/// (<see cref="ImagePredictor{TModel, TResult, TRequest}"/>). For predictions in parallel, load one instance per thread.
/// </para>
/// <para>
/// Batches (a list with <c>batchSize</c> above 1, the <c>batch_size</c> of mmseg's <c>MMSegInferencer</c> call) hold images whose test
/// views have one shape (<see cref="SegmentationInference.InputShape"/>): images are never padded to share a batch, since
/// padding would change every token of a sequence model such as Vim. Each image's scores are resized to its own
/// original size.
/// </para>
/// </summary>
public sealed class Segmentor : ImagePredictor<EncoderDecoder, ImageSegmentation, ScoreRequest>
{
    private readonly SegmentationTestConfig _test;
    private readonly IReadOnlyList<TransformPipeline> _pipelines;

    /// <summary>
    /// A segmentor around a model already built and loaded (e.g. trained in this process); the model is put in eval mode
    /// for each prediction and left as it was. <paramref name="ownsModel"/>: <see cref="Dispose"/> disposes it too.
    /// </summary>
    /// <param name="testScale">data.scale of the config: [long, short] side of the test resize.</param>
    /// <param name="test">model.seg_test of the config.</param>
    /// <param name="classNames">One name per model class, in class order.</param>
    /// <param name="testPipeline">data.test_pipeline of the config as <see cref="DataPipelines.TestSteps"/> binds it (steps built in code are checked here as the config's are); null: the recipe's resize into <paramref name="testScale"/>.</param>
    public Segmentor(EncoderDecoder model, IReadOnlyList<int> testScale, SegmentationTestConfig test, IReadOnlyList<string> classNames, bool ownsModel = false,
        IReadOnlyList<TransformStepConfig>? testPipeline = null)
        : base(model, ownsModel)
    {
        ArgumentNullException.ThrowIfNull(testScale);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count != model.NumClasses)
            throw new VimException($"the segmentor has {model.NumClasses} classes but {classNames.Count} class names were given");
        if (testPipeline is not null) DataPipelines.CheckTestSteps(testPipeline, TaskKind.Segmentation, test.Scales);
        _pipelines = SegmentationInference.TestPipelines(testScale, test, testPipeline);
        _test = test;
        ClassNames = classNames.ToArray();
        Palette = Enumerable.Range(0, classNames.Count).Select(SegmentationVisualizer.Colour).ToArray();
    }

    /// <summary>
    /// Opens a trained segmentor: <paramref name="configPath"/> (the YAML it was trained with) with the options' overrides
    /// and device, and <paramref name="checkpointPath"/> (a `vim train` checkpoint, whose checksums are verified, or a `vim
    /// checkpoint publish`ed file; its EMA weights with <see cref="ModelLoadOptions.Ema"/>). Class names come from
    /// data.class_names or the data root's class_names.txt (<see cref="SegmentationData.ClassNamesForInference"/>). A missing
    /// or unreadable file, a detection config, or weights that do not fit are refused with a <see cref="VimException"/> naming the file.
    /// </summary>
    public static Segmentor Load(string configPath, string checkpointPath, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        return Load(TrainedModelSource.LoadConfig(configPath, checkpointPath, TaskKind.Segmentation, options), checkpointPath, options.Ema, options.Log);
    }

    /// <summary>
    /// Opens a trained segmentor from a config already loaded (<see cref="ExperimentConfig.Load"/>, or built in code) and
    /// <paramref name="checkpointPath"/>, as <see cref="Load(string, string, ModelLoadOptions?)"/> does after reading the
    /// file; the model goes to the config's runtime.device (its runtime.threads is not applied here).
    /// </summary>
    /// <param name="ema">Take the checkpoint's EMA weights.</param>
    /// <param name="log">Where notes go; null discards them.</param>
    public static Segmentor Load(ExperimentConfig config, string checkpointPath, bool ema = false, TextWriter? log = null) =>
        Open(config, TaskKind.Segmentation, checkpointPath, ema, () => SegmentationData.ClassNamesForInference(config, log), () => EncoderDecoder.FromConfig(config, config.Runtime.Seed),
            (model, classNames, testSteps) => new Segmentor(model, config.Data.Scale, config.Model.SegTest, classNames, ownsModel: true, testSteps));

    /// <summary>The name of each class index.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The colour (RGB) of each class index, as in `vim infer`'s colour PNGs.</summary>
    public IReadOnlyList<(byte R, byte G, byte B)> Palette { get; }

    /// <inheritdoc/>
    protected override PreparedImage Prepare(byte[] rgb, int height, int width, string name) =>
        PreparedImage.Prepare(rgb, height, width, name, _pipelines);

    /// <inheritdoc/>
    protected override BatchShape ShapeOf(EncoderDecoder model, PreparedImage image) => SegmentationInference.InputShape(image);

    /// <inheritdoc/>
    protected override void CheckRequest(ScoreRequest? request)
    {
        if (request?.Classes is { } requested)
            foreach (var classIndex in requested)
                if (classIndex >= ClassNames.Count)
                    throw new VimException($"ScoreRequest: class index {classIndex} is not a class of this segmentor (0..{ClassNames.Count - 1})");
    }

    /// <inheritdoc/>
    protected override IReadOnlyList<ImageSegmentation> PredictBatch(EncoderDecoder model, IReadOnlyList<PreparedImage> batch, ScoreRequest? request)
    {
        var device = DeviceSelection.Of(model);
        var views = Enumerable.Range(0, _pipelines.Count)
            .Select(v => PreparedImage.Batch(batch, v, batch[0].Views[v].Height, batch[0].Views[v].Width, device)).ToList();
        var scores = SegmentationInference.Scores(model, views, _test, batch.Select(image => ((long)image.OriginalHeight, (long)image.OriginalWidth)).ToList());
        return batch.Select((image, i) =>
        {
            // Every class's scores at the original size may be hundreds of MB an image: each image's go as soon as it is read.
            using var imageScores = scores[i];
            var labels = SegmentationInference.Labels(imageScores);
            var kept = request is null ? null : CopyScores(imageScores, request.Classes, image.OriginalHeight, image.OriginalWidth);
            return new ImageSegmentation(image.OriginalHeight, image.OriginalWidth, labels, ClassNames, Palette, kept);
        }).ToList();
    }

    /// <summary>The requested classes' planes of one image's (1, K, H, W) scores, copied to the host.</summary>
    private ClassScores CopyScores(Tensor scores, IReadOnlyList<int>? classes, int height, int width)
    {
        using var scope = NewDisposeScope();
        classes ??= Enumerable.Range(0, ClassNames.Count).ToArray();
        var selected = classes.Count == ClassNames.Count && classes.Select((c, i) => c == i).All(same => same)
            ? scores
            : scores.index_select(1, tensor(classes.Select(c => (long)c).ToArray(), device: scores.device));
        var values = selected.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var kind = SegmentationInference.ReturnsLogits(_test) ? ScoreKind.Logits : ScoreKind.Probabilities;
        return new ClassScores(classes, height, width, values, kind);
    }
}
