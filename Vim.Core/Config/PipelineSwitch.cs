using System.Globalization;
using Vim.Core.Engine;

namespace Vim.Core.Config;

/// <summary>
/// One setting data.pipeline_switch may name: left out, the setting keeps its value after the switch; named, it takes
/// <see cref="Value"/> (null: off for a mixing transform, the task's recipe for train_pipeline), as if written under data.
/// </summary>
public readonly record struct SwitchedSetting<T>(bool Named, T? Value) where T : class
{
    public T? After(T? before) => Named ? Value : before;
}

/// <summary>
/// data.pipeline_switch: MMDetection's PipelineSwitchHook (RTMDet: switch_epoch, switch_pipeline) and YOLOXModeSwitchHook
/// (num_last_epochs: Mosaic, RandomAffine and MixUp off for the last epochs) as one setting. After <see cref="At"/> epochs
/// of an epoch-counted run (schedule.max_epochs), or <see cref="At"/> iterations of an iteration-counted one, the training
/// loader reads the data settings the section names (train_pipeline, mosaic, mixup, copy_paste) instead of data's own;
/// what it leaves out stays as it was.
/// </summary>
/// <remarks>
/// The section is kept as written (<see cref="DataConfig.PipelineSwitch"/> is a <see cref="ConfigMap"/>) and read here,
/// because a key left out and a key set to null mean different things (keep, and off), which a bound schema class could not
/// tell apart, nor write back to a work dir's config.yaml unchanged.
/// </remarks>
public sealed class PipelineSwitch
{
    public const string Key = "data.pipeline_switch";

    private static readonly string[] Keys = ["at", "train_pipeline", "mosaic", "mixup", "copy_paste"];

    private PipelineSwitch(int at, bool countsEpochs, SwitchedSetting<ConfigList> trainPipeline, SwitchedSetting<MosaicConfig> mosaic,
        SwitchedSetting<MixUpConfig> mixUp, SwitchedSetting<CopyPasteConfig> copyPaste)
    {
        At = at;
        CountsEpochs = countsEpochs;
        TrainPipeline = trainPipeline;
        Mosaic = mosaic;
        MixUp = mixUp;
        CopyPaste = copyPaste;
    }

    /// <summary>Epochs (<see cref="CountsEpochs"/>) or iterations trained with data's own settings before the switch.</summary>
    public int At { get; }

    /// <summary>The run counts epochs (schedule.max_epochs), and so does <see cref="At"/>.</summary>
    public bool CountsEpochs { get; }

    public SwitchedSetting<ConfigList> TrainPipeline { get; }
    public SwitchedSetting<MosaicConfig> Mosaic { get; }
    public SwitchedSetting<MixUpConfig> MixUp { get; }
    public SwitchedSetting<CopyPasteConfig> CopyPaste { get; }

    /// <summary>
    /// The config's data.pipeline_switch, checked: null where unset. Refuses, naming the file, line and key, an unknown key,
    /// a missing or non-integer at, an at below 1 or not inside the run (at least one epoch or iteration must remain after
    /// it), a section that switches nothing, and a mixing transform given to a segmentation config.
    /// </summary>
    public static PipelineSwitch? Read(ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Data.PipelineSwitch is not { } map) return null;
        foreach (var key in map.Keys)
            if (!Keys.Contains(key))
                throw new VimException($"{map.KeySource(key)}: unknown key '{Key}.{key}'; " +
                    (ClosestMatch.Find(key, Keys) is { } hint ? $"did you mean '{Key}.{hint}'? " : "") + $"(valid keys here: {string.Join(", ", Keys)})");
        if (!map.TryGet("at", out var atNode))
            throw new VimException($"{map.Source}: {Key} has no 'at': give the epochs (with schedule.max_epochs) or iterations trained before the " +
                "switch, e.g. at: 280 as RTMDet's switch_epoch: 280, or max_epochs − 16 as YOLOX's num_last_epochs: 15 (its hook switches one epoch early)");
        int at = ConfigBinder.Bind<int>(atNode, $"{Key}.at");
        var schedule = config.Schedule;
        bool epochs = schedule.MaxEpochs is not null;
        CheckAt(at, epochs ? schedule.MaxEpochs : schedule.MaxIters, epochs, map.KeySource("at").ToString() + ": ");

        SwitchedSetting<T> Named<T>(string key) where T : class =>
            !map.TryGet(key, out var node) ? default
            : node is ConfigScalar { IsNull: true } ? new(true, null)
            : new(true, ConfigBinder.Bind<T>(node, $"{Key}.{key}"));
        var change = new PipelineSwitch(at, epochs, Named<ConfigList>("train_pipeline"), Named<MosaicConfig>("mosaic"),
            Named<MixUpConfig>("mixup"), Named<CopyPasteConfig>("copy_paste"));
        if (map.Count == 1)
            throw new VimException($"{map.Source}: {Key} switches nothing: name what changes at the switch, train_pipeline (a list of steps, or null for " +
                "the task's recipe) and/or mosaic, mixup, copy_paste (null turns one off, a mapping replaces its settings)");
        if (config.Task != TaskKind.Detection)
            foreach (var key in new[] { "mosaic", "mixup", "copy_paste" })
                if (map[key] is { } node && node is not ConfigScalar { IsNull: true })
                    throw new VimException($"{map.KeySource(key)}: {Key}.{key} is a detection setting, but the config's task is segmentation, which never " +
                        "reads it; a segmentation switch changes train_pipeline alone");
        return change;
    }

    private static void CheckAt(int at, int? runLength, bool epochs, string where)
    {
        string unit = epochs ? "epochs" : "iterations";
        if (at < 1)
            throw new VimException($"{where}{Key}.at must be at least 1 ({unit} trained with data's own pipeline before the switch), got {at}");
        if (runLength is { } length && at >= length)
            throw new VimException($"{where}{Key}.at is {at}, but the run is {length} {unit} ({(epochs ? "schedule.max_epochs" : "schedule.max_iters")}): " +
                $"at counts the {unit} trained before the switch, so it must be below {length} for the switched pipeline ever to run");
    }

    /// <summary>
    /// The iteration (0-based) whose batch is the first through the switched pipeline: <see cref="At"/> × the epoch's
    /// iterations in an epoch-counted run (MMEngine's before_train_epoch of epoch At), <see cref="At"/> otherwise.
    /// </summary>
    public int Iteration(TrainingLength length)
    {
        ArgumentNullException.ThrowIfNull(length);
        if (CountsEpochs != length.IterationsPerEpoch is not null)
            throw new InvalidOperationException($"{Key} was read from a config counting {(CountsEpochs ? "epochs" : "iterations")}, the run counts the other");
        CheckAt(At, CountsEpochs ? length.MaxEpochs : length.MaxIters, CountsEpochs, "");
        return Iteration(length.IterationsPerEpoch ?? 1);
    }

    /// <summary>
    /// <see cref="Iteration(TrainingLength)"/> on a loader of <paramref name="iterationsPerEpoch"/> batches an epoch, without
    /// resolving the run's schedule (`vim data browse`, which trains nothing): <paramref name="iterationsPerEpoch"/> is read
    /// only where <see cref="At"/> counts epochs.
    /// </summary>
    public int Iteration(int iterationsPerEpoch) => CountsEpochs ? At * iterationsPerEpoch : At;

    /// <summary>A copy of <paramref name="config"/> as the training loader reads it after the switch: the named settings in data's place, no switch left.</summary>
    public ExperimentConfig ApplyTo(ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var switched = config.Copy();
        var data = switched.Data;
        data.TrainPipeline = TrainPipeline.After(data.TrainPipeline);
        data.Mosaic = Mosaic.After(data.Mosaic);
        data.MixUp = MixUp.After(data.MixUp);
        data.CopyPaste = CopyPaste.After(data.CopyPaste);
        data.PipelineSwitch = null;
        return switched;
    }

    /// <summary>What the switch changes, for the console and the log: e.g. "data.train_pipeline → data.pipeline_switch.train_pipeline (4 steps), data.mosaic off".</summary>
    public string Changes()
    {
        var parts = new List<string>();
        if (TrainPipeline.Named)
            parts.Add(TrainPipeline.Value is { } steps
                ? $"data.train_pipeline → {Key}.train_pipeline ({steps.Items.Count.ToString(CultureInfo.InvariantCulture)} steps)"
                : "data.train_pipeline → the task's recipe");
        void Mixer<T>(string key, SwitchedSetting<T> setting) where T : class
        {
            if (setting.Named) parts.Add(setting.Value is null ? $"data.{key} off" : $"data.{key} → {Key}.{key}");
        }
        Mixer("mosaic", Mosaic);
        Mixer("mixup", MixUp);
        Mixer("copy_paste", CopyPaste);
        return string.Join(", ", parts);
    }

    /// <summary>Where the switch falls, for messages: "after 2 epochs (12 iterations)" or "after 12 iterations".</summary>
    public string Place(int iteration) =>
        CountsEpochs ? $"after {Count(At, "epoch")} ({Count(iteration, "iteration")})" : $"after {Count(iteration, "iteration")}";

    private static string Count(int count, string unit) => $"{count.ToString(CultureInfo.InvariantCulture)} {unit}{(count == 1 ? "" : "s")}";
}
