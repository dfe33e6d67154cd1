using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Data.Prediction;

/// <summary>
/// What the library's predictors (<c>Vim.Detection.Detector</c>, <c>Vim.Segmentation.Segmentor</c>) share around their
/// model: the <c>Predict</c> overloads (an image file, its encoded bytes, decoded pixels, or a list of any of them,
/// predicted in batches of images of one shape), each batch run under a lock in its own dispose scope with the model in
/// eval mode, refusal once disposed, and the model disposed with the predictor when the predictor owns it. A derived
/// predictor says how an image becomes test views (<see cref="Prepare"/>), which images may share a batch
/// (<see cref="ShapeOf"/>) and how a batch becomes results (<see cref="PredictBatch"/>); <typeparamref name="TRequest"/> is
/// what a caller may ask of one prediction besides the default result (null: nothing). A request may make one image
/// several model inputs (the detector's sliced prediction): the predictor then answers for the image itself
/// (<see cref="TryPredictComposite"/>), running its inputs through the same batching (<see cref="PredictPrepared"/>).
/// <para>
/// Why a lock rather than one model per thread: the model keeps per-forward working buffers (Vim's inference workspace)
/// and inference switches it to eval mode and back, so two forwards through one model at once are unsafe. A caller
/// wanting predictions in parallel loads one predictor per thread.
/// </para>
/// <para>
/// Batches (<c>batchSize</c> above 1) only ever hold images whose views take one tensor shape in the model
/// (<see cref="SameShapeBatches{TItem, TShape}"/> says why), so each image's result is the one it gets alone, up to the last
/// bits of float arithmetic (a batched matrix product may sum in another order).
/// </para>
/// </summary>
public abstract class ImagePredictor<TModel, TResult, TRequest> : IDisposable where TModel : nn.Module where TRequest : class
{
    private readonly TModel _model;
    private readonly bool _ownsModel;
    private readonly Lock _gate = new();
    private bool _disposed;

    protected ImagePredictor(TModel model, bool ownsModel)
    {
        ArgumentNullException.ThrowIfNull(model);
        (_model, _ownsModel) = (model, ownsModel);
    }

    /// <summary>
    /// Opens a predictor of <paramref name="task"/> from a loaded config and a checkpoint, cheap refusals first: the task,
    /// the data settings and pipelines, the class names (<paramref name="classes"/>), then the model built (<paramref name="build"/>),
    /// moved to the config's device, loaded strictly with the checkpoint's trained (or, with <paramref name="ema"/>, EMA)
    /// weights (<see cref="TrainingCheckpoint.LoadWeights"/>: checksums verified) and handed to <paramref name="wrap"/>, the
    /// predictor that will own it, with data.test_pipeline's steps as <see cref="DataPipelines.Check"/> checked them. The model is disposed when anything after its building fails.
    /// </summary>
    protected static TPredictor Open<TPredictor, TClasses>(ExperimentConfig config, TaskKind task, string checkpointPath, bool ema,
        Func<TClasses> classes, Func<TModel> build, Func<TModel, TClasses, IReadOnlyList<TransformStepConfig>?, TPredictor> wrap)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(checkpointPath);
        TrainedModelSource.RequireTask(config, task, "the config");
        TrainingLoaderChecks.CheckSettings(config.Data);
        var testSteps = DataPipelines.Check(config);
        var names = classes();
        var model = build();
        try
        {
            DeviceSelection.MoveModel(model, DeviceSelection.Resolve(config.Runtime));
            TrainingCheckpoint.LoadWeights(model, checkpointPath, ema);
            return wrap(model, names, testSteps);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Where the model runs (cpu, cuda:N).</summary>
    public string Device => Locked(model => DeviceSelection.Of(model).ToString());

    /// <summary>Predicts an image file (JPEG, PNG, BMP, TIFF, WebP: what OpenCV decodes), at its stored pixel grid.</summary>
    public TResult Predict(string imagePath) => Predict(imagePath, null);

    /// <summary><see cref="Predict(string)"/>, with <paramref name="request"/> asking for more than the default result.</summary>
    public TResult Predict(string imagePath, TRequest? request) => PredictOne(FromFile(imagePath), request);

    /// <summary>Predicts an encoded image held in memory (a JPEG or PNG file's bytes, e.g. an upload).</summary>
    public TResult Predict(byte[] encodedImage) => Predict(encodedImage, null);

    /// <summary><see cref="Predict(byte[])"/>, with <paramref name="request"/> asking for more than the default result.</summary>
    public TResult Predict(byte[] encodedImage, TRequest? request) => PredictOne(FromBytes(encodedImage, "encoded image"), request);

    /// <summary>Predicts decoded pixels (8-bit RGB).</summary>
    public TResult Predict(RgbImage image) => Predict(image, null);

    /// <summary><see cref="Predict(RgbImage)"/>, with <paramref name="request"/> asking for more than the default result.</summary>
    public TResult Predict(RgbImage image, TRequest? request) => PredictOne(FromPixels(image), request);

    /// <summary>
    /// Each image file's result, in the list's order (each the one <see cref="Predict(string, TRequest?)"/> gives),
    /// predicted <paramref name="batchSize"/> images of one shape at a time (see the class).
    /// </summary>
    public IReadOnlyList<TResult> Predict(IReadOnlyList<string> imagePaths, TRequest? request = null, int batchSize = 1) =>
        PredictAll(imagePaths, (path, _) => FromFile(path), request, batchSize);

    /// <summary>Each encoded image's result, in order (messages name "encoded image K"), in batches as <see cref="Predict(IReadOnlyList{string}, TRequest?, int)"/>.</summary>
    public IReadOnlyList<TResult> Predict(IReadOnlyList<byte[]> encodedImages, TRequest? request = null, int batchSize = 1) =>
        PredictAll(encodedImages, (bytes, index) => FromBytes(bytes, $"encoded image {index}"), request, batchSize);

    /// <summary>Each decoded image's result, in order, in batches as <see cref="Predict(IReadOnlyList{string}, TRequest?, int)"/>.</summary>
    public IReadOnlyList<TResult> Predict(IReadOnlyList<RgbImage> images, TRequest? request = null, int batchSize = 1) =>
        PredictAll(images, (image, _) => FromPixels(image), request, batchSize);

    /// <summary>An image's test views, on the host (runs outside the lock, so threads prepare while another predicts).</summary>
    protected abstract PreparedImage Prepare(byte[] rgb, int height, int width, string name);

    /// <summary>
    /// The tensor shape the image's views take in <paramref name="model"/>: images of equal shapes may share a batch. Called
    /// outside the lock, so it may read only what no prediction changes (e.g. the detector's input geometry), never run the model.
    /// </summary>
    protected abstract BatchShape ShapeOf(TModel model, PreparedImage image);

    /// <summary>Refuses a request this predictor cannot serve, before any image is read.</summary>
    protected virtual void CheckRequest(TRequest? request)
    {
    }

    /// <summary>
    /// For a request that makes one image several model inputs of its own (a detector's sliced prediction): the image's
    /// result, predicted through <see cref="PredictPrepared"/> with up to <paramref name="batchSize"/> of its inputs per
    /// batch; false where the image is predicted the ordinary way (<see cref="Prepare"/>, batched with other images).
    /// Runs outside the lock.
    /// </summary>
    protected virtual bool TryPredictComposite(byte[] rgb, int height, int width, string name, TRequest? request, int batchSize, out TResult result)
    {
        result = default!;
        return false;
    }

    /// <summary>
    /// The results of prepared images, in order, predicted <paramref name="batchSize"/> of one <see cref="ShapeOf"/> at a
    /// time; <paramref name="images"/> is enumerated lazily, so only the images waiting for a batch are held.
    /// </summary>
    protected IReadOnlyList<TResult> PredictPrepared(IEnumerable<PreparedImage> images, TRequest? request, int batchSize)
    {
        var results = new List<TResult>();
        // Each waiting image travels with its position, where its result goes.
        var batches = new SameShapeBatches<(int Index, PreparedImage Image), BatchShape>(batchSize);
        void RunBatch(IReadOnlyList<(int Index, PreparedImage Image)> batch)
        {
            var found = Run(batch.Select(item => item.Image).ToList(), request);
            for (int j = 0; j < batch.Count; j++)
            {
                while (results.Count <= batch[j].Index) results.Add(default!);
                results[batch[j].Index] = found[j];
            }
        }
        int index = 0;
        foreach (var image in images)
            foreach (var batch in batches.Add((index++, image), ShapeOf(_model, image))) RunBatch(batch);
        foreach (var batch in batches.Flush()) RunBatch(batch);
        return results;
    }

    /// <summary>
    /// The results of a batch of images of one <see cref="ShapeOf"/>, in order, as managed values: the model is in eval mode
    /// and no other prediction runs; tensors made here belong to the batch's dispose scope.
    /// </summary>
    protected abstract IReadOnlyList<TResult> PredictBatch(TModel model, IReadOnlyList<PreparedImage> batch, TRequest? request);

    private TResult PredictOne(DecodedImage image, TRequest? request)
    {
        CheckRequest(request);
        if (TryPredictComposite(image.Rgb, image.Height, image.Width, image.Name, request, 1, out var composite)) return composite;
        var prepared = Prepare(image.Rgb, image.Height, image.Width, image.Name);
        return Run([prepared], request)[0];
    }

    private IReadOnlyList<TResult> PredictAll<TInput>(IReadOnlyList<TInput> inputs, Func<TInput, int, DecodedImage> decode, TRequest? request, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        SameShapeBatches<int, BatchShape>.RequireBatchSize(batchSize, nameof(batchSize));
        CheckRequest(request);
        var results = new TResult[inputs.Count];
        // Where each ordinary image's result goes: its position among the inputs.
        var ordinaryPositions = new List<int>();
        IEnumerable<PreparedImage> Ordinary()
        {
            for (int i = 0; i < inputs.Count; i++)
            {
                var image = decode(inputs[i], i);
                if (TryPredictComposite(image.Rgb, image.Height, image.Width, image.Name, request, batchSize, out var composite))
                {
                    results[i] = composite;
                    continue;
                }
                ordinaryPositions.Add(i);
                yield return Prepare(image.Rgb, image.Height, image.Width, image.Name);
            }
        }
        var ordinary = PredictPrepared(Ordinary(), request, batchSize);
        for (int k = 0; k < ordinary.Count; k++) results[ordinaryPositions[k]] = ordinary[k];
        return results;
    }

    private IReadOnlyList<TResult> Run(IReadOnlyList<PreparedImage> batch, TRequest? request) => Locked(model =>
    {
        using var eval = EvalMode.Enter(model);
        var found = PredictBatch(model, batch, request);
        if (found.Count != batch.Count) throw new InvalidOperationException($"{found.Count} results for a batch of {batch.Count} images");
        return found;
    });

    /// <summary>
    /// Runs <paramref name="predict"/> on the model while no other prediction does, in a dispose scope of its own: the
    /// result must hold no tensor.
    /// </summary>
    private TValue Locked<TValue>(Func<TModel, TValue> predict)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var scope = NewDisposeScope();
            return predict(_model);
        }
    }

    private readonly record struct DecodedImage(byte[] Rgb, int Height, int Width, string Name);

    private static DecodedImage FromFile(string imagePath)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        var (rgb, height, width) = ImageDecoder.ReadRgb(imagePath);
        return new DecodedImage(rgb, height, width, imagePath);
    }

    private static DecodedImage FromBytes(byte[] encodedImage, string name)
    {
        ArgumentNullException.ThrowIfNull(encodedImage);
        var (rgb, height, width) = ImageDecoder.DecodeRgb(encodedImage, name);
        return new DecodedImage(rgb, height, width, name);
    }

    private static DecodedImage FromPixels(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new DecodedImage(image.Pixels, image.Height, image.Width, $"{image.Width}x{image.Height} RGB pixels");
    }

    /// <summary>Releases the model (when this predictor owns it); waits for a prediction under way.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            if (_ownsModel) _model.Dispose();
        }
    }
}
