using Vim.Core.Checkpoints;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// How a trained model is opened for prediction (mmdet's <c>init_detector(config, checkpoint, device, cfg_options)</c>,
/// mmseg's <c>init_model</c>): <see cref="Overrides"/> are `--set` strings ("key=value", the value YAML), applied after
/// the config's own keys; <see cref="Device"/> (cpu, cuda, cuda:N) overrides runtime.device after them; <see cref="Ema"/>
/// takes the checkpoint's EMA weights; <see cref="Log"/> receives notes (e.g. that class names could not be found).
/// </summary>
public sealed record ModelLoadOptions
{
    public IReadOnlyList<string> Overrides { get; init; } = [];

    /// <summary>runtime.device for this model (cpu, cuda, cuda:N); null keeps the config's.</summary>
    public string? Device { get; init; }

    public bool Ema { get; init; }

    /// <summary>Where notes go; null discards them.</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>
/// The config of a trained model as the detection and segmentation predictors (and so `vim infer`) open it: the
/// checkpoint must be a file (cheap, before the config), the config must load with its overrides and be of the expected
/// task. The weights follow in <c>ImagePredictor.Open</c>.
/// </summary>
public static class TrainedModelSource
{
    /// <summary>
    /// The config of a trained model: <paramref name="checkpointPath"/> checked to be a file (cheap, so a wrong path is
    /// named before the config is read), then the config loaded with the options' overrides and device
    /// (<see cref="RuntimeSetup.LoadConfig"/>: runtime.threads applies to the process) and, given a <paramref name="task"/>,
    /// refused naming the file when it configures the other task.
    /// </summary>
    public static ExperimentConfig LoadConfig(string configPath, string checkpointPath, TaskKind? task, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(configPath);
        ArgumentNullException.ThrowIfNull(checkpointPath);
        ArgumentNullException.ThrowIfNull(options);
        CheckpointFile.RequireFile(checkpointPath);
        var overrides = options.Device is { } device ? options.Overrides.Append($"{DeviceSelection.ConfigKey}={device}") : options.Overrides;
        var config = RuntimeSetup.LoadConfig(configPath, overrides);
        if (task is { } expected) RequireTask(config, expected, configPath);
        return config;
    }

    /// <summary>Refuses a config of another task than <paramref name="task"/>; <paramref name="source"/> names it (its file).</summary>
    public static void RequireTask(ExperimentConfig config, TaskKind task, string source)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Task == task) return;
        var predictor = config.Task == TaskKind.Detection ? "Vim.Detection.Detector" : "Vim.Segmentation.Segmentor";
        throw new VimException($"{source}: task is {TaskName(config.Task)}, expected {TaskName(task)}; a {TaskName(config.Task)} model opens with {predictor}");
    }

    private static string TaskName(TaskKind task) => task == TaskKind.Detection ? "detection" : "segmentation";
}
