using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// One config's model with validation images in memory, ready for `vim bench infer` to time: each prediction runs the
/// way `vim test` runs it, and reading and transforming the images is done beforehand (mmdet's benchmark excludes data
/// loading the same way, with a pre-fetching loader).
/// </summary>
public interface IInferenceSubject : IDisposable
{
    /// <summary>How the results name it (the config's file name, numbered when a config is given twice).</summary>
    string Name { get; }

    string Config { get; }

    /// <summary>"detection" or "segmentation".</summary>
    string Task { get; }

    /// <summary>The loaded checkpoint, or null: the weights are the model's initial ones.</summary>
    string? Checkpoint { get; }

    /// <summary>The stages <see cref="Vim.Core.Diagnostics.StageProfiler"/> times in each prediction, in the order they run.</summary>
    IReadOnlyList<string> Stages { get; }

    /// <summary>How many distinct validation images are in memory (the first of the split).</summary>
    int ImageCount { get; }

    /// <summary>Where the model and the images are.</summary>
    Device Device { get; }

    /// <summary>Predicts image <paramref name="index"/> (0..<see cref="ImageCount"/>−1); returns how many detections it
    /// made (null for segmentation). The caller's dispose scope owns what the prediction leaves.</summary>
    long? Predict(int index);
}

/// <summary>
/// A task built as `vim test` builds it (weights loaded by the caller) and the evaluation inputs of the first validation
/// images, copied to the model's device: detection's one test-resized image, segmentation's views (one per
/// model.seg_test.scales ratio). Owns the task.
/// </summary>
public sealed class InferenceSubject : IInferenceSubject
{
    private readonly IDisposable _task;
    private readonly Func<Tensor[], SampleMeta[], long?> _predict;
    private readonly List<(Tensor[] Views, SampleMeta[] Metas)> _inputs = [];

    private InferenceSubject(string name, string config, string? checkpoint, string task, IDisposable owned, nn.Module model,
        IEnumerable<Batch[]> evaluationInputs, int images, IReadOnlyList<string> stages, Func<Tensor[], SampleMeta[], long?> predict)
    {
        (Name, Config, Checkpoint, Task, _task, Stages, _predict) = (name, config, checkpoint, task, owned, stages, predict);
        try
        {
            model.eval();
            Device = DeviceSelection.Of(model);
            foreach (var views in evaluationInputs.Take(images))
            {
                try
                {
                    _inputs.Add((views.Select(view => InMemory(view.Images, Device)).ToArray(), views.Select(view => view.Metas[0]).ToArray()));
                }
                finally
                {
                    foreach (var view in views) view.Dispose();
                }
            }
            if (_inputs.Count == 0) throw new VimException($"{config}: the validation split holds no image to time");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Detection: <see cref="DetectionTask.Predict(IReadOnlyList{Tensor}, IReadOnlyList{SampleMeta})"/>, the full predict path with the
    /// masks pasted at the original size (and model.det_test's passes, one view per scale).
    /// </summary>
    public static InferenceSubject ForDetection(string name, string config, string? checkpoint, DetectionTask task, int images) =>
        new(name, config, checkpoint, "detection", task, task.Model, task.Data.EvaluationViews(task.ValSet),
            images, DetectionStages.Of(task.Detector), (views, metas) => task.Predict(views, metas).Count);

    /// <summary>Segmentation: <see cref="SegmentationTask.Predict"/>, whole-image or sliding-window passes (and flips) as <paramref name="test"/> says.</summary>
    public static InferenceSubject ForSegmentation(string name, string config, string? checkpoint, SegmentationTask task, SegmentationTestConfig test,
        int images) =>
        new(name, config, checkpoint, "segmentation", task, task.Model, task.EvaluationViews(task.ValSet), images, SegmentationStages.Of(test),
            (views, metas) =>
            {
                task.Predict(views, metas[0]);
                return null;
            });

    public string Name { get; }
    public string Config { get; }
    public string Task { get; }
    public string? Checkpoint { get; }
    public IReadOnlyList<string> Stages { get; }
    public int ImageCount => _inputs.Count;
    public Device Device { get; } = CPU;

    public long? Predict(int index) => _predict(_inputs[index].Views, _inputs[index].Metas);

    public void Dispose()
    {
        foreach (var (views, _) in _inputs)
            foreach (var view in views) view.Dispose();
        _inputs.Clear();
        _task.Dispose();
    }

    /// <summary>A copy on <paramref name="device"/> that no dispose scope owns (the loader's tensor goes with its batch).</summary>
    private static Tensor InMemory(Tensor images, Device device)
    {
        using var scope = NewDisposeScope();
        return images.to(device).clone().DetachFromDisposeScope();
    }
}
