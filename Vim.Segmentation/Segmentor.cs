using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Datasets;
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
/// (<see cref="ImagePredictor{TModel}"/>). For predictions in parallel, load one instance per thread.
/// </para>
/// </summary>
public sealed class Segmentor : ImagePredictor<EncoderDecoder>
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
    /// <param name="testPipeline">data.test_pipeline of the config (<see cref="DataPipelines.TestSteps"/>); null: the recipe's resize into <paramref name="testScale"/>.</param>
    public Segmentor(EncoderDecoder model, IReadOnlyList<int> testScale, SegmentationTestConfig test, IReadOnlyList<string> classNames, bool ownsModel = false,
        IReadOnlyList<TransformStepConfig>? testPipeline = null)
        : base(model, ownsModel)
    {
        ArgumentNullException.ThrowIfNull(testScale);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count != model.NumClasses)
            throw new VimException($"the segmentor has {model.NumClasses} classes but {classNames.Count} class names were given");
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
            (model, classNames) => new Segmentor(model, config.Data.Scale, config.Model.SegTest, classNames, ownsModel: true, DataPipelines.TestSteps(config)));

    /// <summary>The name of each class index.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The colour (RGB) of each class index, as in `vim infer`'s colour PNGs.</summary>
    public IReadOnlyList<(byte R, byte G, byte B)> Palette { get; }

    /// <summary>Segments an image file (what OpenCV decodes), at its stored pixel grid; <paramref name="scores"/> also returns those classes' scores.</summary>
    public ImageSegmentation Predict(string imagePath, ScoreRequest? scores = null)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        var (rgb, height, width) = ImageDecoder.ReadRgb(imagePath);
        return Run(rgb, height, width, imagePath, scores);
    }

    /// <summary>Segments an encoded image held in memory (a JPEG or PNG file's bytes).</summary>
    public ImageSegmentation Predict(byte[] encodedImage, ScoreRequest? scores = null) => Predict(encodedImage, "encoded image", scores);

    /// <summary>Segments decoded pixels (8-bit RGB).</summary>
    public ImageSegmentation Predict(RgbImage image, ScoreRequest? scores = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        return Run(image.Pixels, image.Height, image.Width, $"{image.Width}x{image.Height} RGB pixels", scores);
    }

    /// <summary>Each image file's segmentation, in order (each exactly its single <see cref="Predict(string, ScoreRequest?)"/>).</summary>
    public IReadOnlyList<ImageSegmentation> Predict(IReadOnlyList<string> imagePaths, ScoreRequest? scores = null) =>
        Each(imagePaths, (path, _) => Predict(path, scores));

    /// <summary>Each encoded image's segmentation, in order.</summary>
    public IReadOnlyList<ImageSegmentation> Predict(IReadOnlyList<byte[]> encodedImages, ScoreRequest? scores = null) =>
        Each(encodedImages, (bytes, index) => Predict(bytes, $"encoded image {index}", scores));

    /// <summary>Each decoded image's segmentation, in order.</summary>
    public IReadOnlyList<ImageSegmentation> Predict(IReadOnlyList<RgbImage> images, ScoreRequest? scores = null) =>
        Each(images, (image, _) => Predict(image, scores));

    private ImageSegmentation Predict(byte[] encodedImage, string name, ScoreRequest? scores)
    {
        ArgumentNullException.ThrowIfNull(encodedImage);
        var (rgb, height, width) = ImageDecoder.DecodeRgb(encodedImage, name);
        return Run(rgb, height, width, name, scores);
    }

    private ImageSegmentation Run(byte[] rgb, int height, int width, string name, ScoreRequest? request)
    {
        if (request?.Classes is { } requested)
            foreach (var classIndex in requested)
                if (classIndex >= ClassNames.Count)
                    throw new VimException($"ScoreRequest: class index {classIndex} is not a class of this segmentor (0..{ClassNames.Count - 1})");
        return Locked(model =>
        {
            bool wasTraining = model.training;
            model.eval();
            try
            {
                var views = SegmentationInference.TestViews(rgb, height, width, name, _pipelines, DeviceSelection.Of(model));
                var scores = SegmentationInference.Scores(model, views, _test, height, width);
                var labels = SegmentationInference.Labels(scores);
                var kept = request is null ? null : CopyScores(scores, request.Classes, height, width);
                return new ImageSegmentation(height, width, labels, ClassNames, Palette, kept);
            }
            finally
            {
                if (wasTraining) model.train();
            }
        });
    }

    /// <summary>The requested classes' planes of one image's (1, K, H, W) scores, copied to the host.</summary>
    private ClassScores CopyScores(Tensor scores, IReadOnlyList<int>? classes, int height, int width)
    {
        classes ??= Enumerable.Range(0, ClassNames.Count).ToArray();
        var selected = classes.Count == ClassNames.Count && classes.Select((c, i) => c == i).All(same => same)
            ? scores
            : scores.index_select(1, tensor(classes.Select(c => (long)c).ToArray(), device: scores.device));
        var values = selected.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        // SegmentationInference.Scores returns one pass's logits as they are, and averages softmax outputs over several.
        var kind = !_test.Flip && _pipelines.Count == 1 ? ScoreKind.Logits : ScoreKind.Probabilities;
        return new ClassScores(classes, height, width, values, kind);
    }
}
