using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Data.Prediction;

/// <summary>
/// What the library's predictors (<c>Vim.Detection.Detector</c>, <c>Vim.Segmentation.Segmentor</c>) share around their
/// model: predictions run one at a time under a lock, each in its own dispose scope, and refuse once disposed; the
/// model is disposed with the predictor when the predictor owns it.
/// <para>
/// Why a lock rather than one model per thread: the model keeps per-forward working buffers (Vim's inference workspace)
/// and inference switches it to eval mode and back, so two forwards through one model at once are unsafe. A caller
/// wanting predictions in parallel loads one predictor per thread.
/// </para>
/// </summary>
public abstract class ImagePredictor<TModel> : IDisposable where TModel : nn.Module
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
    /// predictor that will own it. The model is disposed when anything after its building fails.
    /// </summary>
    protected static TPredictor Open<TPredictor, TClasses>(ExperimentConfig config, TaskKind task, string checkpointPath, bool ema,
        Func<TClasses> classes, Func<TModel> build, Func<TModel, TClasses, TPredictor> wrap)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(checkpointPath);
        TrainedModelSource.RequireTask(config, task, "the config");
        TrainingLoaderChecks.CheckSettings(config.Data);
        DataPipelines.Check(config);
        var names = classes();
        var model = build();
        try
        {
            DeviceSelection.MoveModel(model, DeviceSelection.Resolve(config.Runtime));
            TrainingCheckpoint.LoadWeights(model, checkpointPath, ema);
            return wrap(model, names);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Where the model runs (cpu, cuda:N).</summary>
    public string Device => Locked(model => DeviceSelection.Of(model).ToString());

    /// <summary>
    /// Runs <paramref name="predict"/> on the model while no other prediction does, in a dispose scope of its own: the
    /// result must hold no tensor.
    /// </summary>
    protected TResult Locked<TResult>(Func<TModel, TResult> predict)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var scope = NewDisposeScope();
            return predict(_model);
        }
    }

    /// <summary>Each input's result, in order, each predicted as it would be alone.</summary>
    protected static IReadOnlyList<TResult> Each<TInput, TResult>(IReadOnlyList<TInput> inputs, Func<TInput, int, TResult> predict)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var results = new TResult[inputs.Count];
        for (int i = 0; i < results.Length; i++) results[i] = predict(inputs[i], i);
        return results;
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
