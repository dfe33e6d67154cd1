namespace Vim.Core.Config;

/// <summary>
/// The schema of an experiment config (configs/**/*.yaml): every key a config may set, with its
/// default. Sections are filled in by the subsystems that consume them; an unknown key is an error.
/// </summary>
public sealed class ExperimentConfig
{
    /// <summary>Which pipeline a config drives.</summary>
    public TaskKind Task { get; set; } = TaskKind.Segmentation;

    public ModelConfig Model { get; set; } = new();

    public DataConfig Data { get; set; } = new();

    public OptimizerConfig Optimizer { get; set; } = new();

    public ScheduleConfig Schedule { get; set; } = new();

    public TrainConfig Train { get; set; } = new();

    public RuntimeConfig Runtime { get; set; } = new();

    public AutoScaleLrConfig AutoScaleLr { get; set; } = new();

    /// <summary>
    /// MMEngine's load_from, top level as there: a checkpoint whose whole-model weights start a fresh training run (a
    /// `vim train` checkpoint, or a .pth / .safetensors state dict). Only the weights: iteration 0, a fresh optimiser and
    /// schedule. Loaded after model.backbone.pretrained, so its tensors win; keys it lacks or has with another shape keep
    /// their values. A resume (`vim train --resume` with a checkpoint to resume) wins over it. `vim train --load-from`.
    /// </summary>
    public string? LoadFrom { get; set; }

    /// <summary>Start from the checkpoint's EMA weights (a `vim train` checkpoint's "ema", a .pth's "model_ema") instead of its trained ones.</summary>
    public bool LoadFromEma { get; set; }

    /// <summary>
    /// Where the loaded config's keys were written, for checks run after loading (<see cref="WrittenKeys.Refuse"/>); kept by
    /// <see cref="Copy"/>, whose copies training makes (an epoch-counted schedule resolved, a pipeline switch applied). No config key.
    /// </summary>
    [ConfigIgnore]
    public WrittenKeys Written { get; set; } = WrittenKeys.None;

    /// <summary>A deep copy (through the config tree, as a saved config reads back), keeping <see cref="Written"/>, which no config key holds.</summary>
    public ExperimentConfig Copy()
    {
        var copy = ConfigBinder.Bind<ExperimentConfig>((ConfigMap)ConfigBinder.ToNode(this));
        copy.Written = Written;
        return copy;
    }

    /// <summary>Loads, merges and type-checks a config file with its bases and overrides.</summary>
    public static (ExperimentConfig Config, ConfigMap Tree) Load(string path, IEnumerable<string>? overrides = null)
    {
        var tree = ConfigLoader.Load(path, overrides);
        var config = ConfigBinder.Bind<ExperimentConfig>(tree);
        config.Written = new WrittenKeys(tree);
        RefuseOtherTasksSettings(config, tree);
        RefuseTwoLengths(config, tree);
        RefuseFixedScheduleBesideList(config, tree);
        ParamSchedulerList.Read(config.Schedule);
        if (config.Task == TaskKind.Detection)
            config.Model.DetHead.CheckHyperParameters(key => DetHeadKeySource(tree, key));
        PipelineSwitch.Read(config);
        return (config, tree);
    }

    /// <summary>Where model.det_head.KEY was written (file and line, or the --set), null where the config leaves it to the default.</summary>
    private static string? DetHeadKeySource(ConfigMap tree, string key) =>
        tree["model"] is ConfigMap model && model["det_head"] is ConfigMap head && head.TryGet(key, out _) ? head.KeySource(key).ToString() : null;

    /// <summary>schedule.max_iters and schedule.max_epochs both set, in one file or across a base and its child: refused, naming where each was written.</summary>
    private static void RefuseTwoLengths(ExperimentConfig config, ConfigMap tree)
    {
        if (config.Schedule is not { MaxIters: { } iterations, MaxEpochs: { } epochs }) return;
        var schedule = tree["schedule"] as ConfigMap;
        string? Where(string key) => schedule is not null && schedule.TryGet(key, out _) ? schedule.KeySource(key).ToString() : null;
        throw new VimException(Engine.EpochSchedule.BothLengths(iterations, epochs, Where("max_iters"), Where("max_epochs")));
    }

    /// <summary>
    /// schedule.param_scheduler sets the lr alone, so a fixed-schedule key (policy, warmup_iters, …) written beside it, in this
    /// file, a base or --set, would be silently ignored: refused, naming both, whatever its value (a hand-written
    /// warmup_iters: 1500, the default, still reads as a warmup the list does not do). Only a schedule section that spells
    /// out every key with the fixed ones at their defaults passes: a work dir's config.yaml or `vim config show --resolved`,
    /// which write every key. An inherited key is dropped by replacing the base's schedule section
    /// (<c>schedule: {_delete_: true, …}</c>, restating max_iters or max_epochs).
    /// </summary>
    private static void RefuseFixedScheduleBesideList(ExperimentConfig config, ConfigMap tree)
    {
        if (config.Schedule.ParamScheduler is null || tree["schedule"] is not ConfigMap written) return;
        var values = (ConfigMap)ConfigBinder.ToNode(config.Schedule);
        var defaults = (ConfigMap)ConfigBinder.ToNode(new ScheduleConfig());
        bool spelledOut = defaults.Keys.All(key => written.TryGet(key, out _));
        foreach (var key in ParamSchedulerList.ReplacedKeys)
        {
            if (!written.TryGet(key, out _)) continue;
            string value = ConfigWriter.Inline(values[key]!), fallback = ConfigWriter.Inline(defaults[key]!);
            if (spelledOut && value == fallback) continue;
            throw new VimException($"{written.KeySource(key)}: schedule.{key} ({value}) is written beside {ParamSchedulerList.Key} " +
                $"({written.KeySource("param_scheduler")}), which sets the lr alone and would ignore it; remove schedule.{key} (a warmup is " +
                $"a LinearLR entry in the list), or, inherited from a base, replace the base's schedule with schedule: {{_delete_: true, …}} restating " +
                "max_iters or max_epochs; or remove param_scheduler to keep the fixed schedule");
        }
    }

    /// <summary>Settings only one task reads: parent section, key, owner, and the value a config binds there.</summary>
    private static readonly (string Section, string Key, TaskKind Task, Func<ExperimentConfig, object?> Value)[] TaskOnlySettings =
    [
        ("data", "class_names", TaskKind.Segmentation, c => c.Data.ClassNames),
        ("data", "reduce_zero_label", TaskKind.Segmentation, c => c.Data.ReduceZeroLabel),
        ("data", "scale", TaskKind.Segmentation, c => c.Data.Scale),
        // Balancing reads each image's annotated classes; mmseg has no class-balanced wrapper to follow for label maps.
        ("data", "class_balanced_thr", TaskKind.Detection, c => c.Data.ClassBalancedThr),
        // mmdet's CocoDataset filter; mmseg's datasets filter nothing.
        ("data", "filter_cfg", TaskKind.Detection, c => c.Data.FilterCfg),
        // Pastes instances; label maps have none (mmseg has no copy-paste).
        ("data", "copy_paste", TaskKind.Detection, c => c.Data.CopyPaste),
        // Mix instances too; mmseg has no mosaic or mixup of label maps.
        ("data", "mosaic", TaskKind.Detection, c => c.Data.Mosaic),
        ("data", "mixup", TaskKind.Detection, c => c.Data.MixUp),
        ("model", "seg_head", TaskKind.Segmentation, c => c.Model.SegHead.WithSpelledOutDefaultLossUnset()),
        ("model", "seg_test", TaskKind.Segmentation, c => c.Model.SegTest),
        ("model", "det_head", TaskKind.Detection, c => c.Model.DetHead),
        ("model", "det_test", TaskKind.Detection, c => c.Model.DetTest),
    ];

    /// <summary>
    /// A setting the config's task never reads would be silently ignored (a segmentation head's width in a detection
    /// config, say), so one written with another value than its default is refused, naming where. Defaults pass: a
    /// work dir's config.yaml lists every section.
    /// </summary>
    private static void RefuseOtherTasksSettings(ExperimentConfig config, ConfigMap tree)
    {
        var defaults = new ExperimentConfig();
        static string Text(object? value) => ConfigWriter.Inline(ConfigBinder.ToNode(value));
        static string Name(TaskKind kind) => Text(kind);
        foreach (var (section, key, owner, value) in TaskOnlySettings)
        {
            if (owner == config.Task || tree[section] is not ConfigMap map || !map.TryGet(key, out _)) continue;
            if (Text(value(config)) == Text(value(defaults))) continue;
            throw new VimException($"{map.KeySource(key)}: {section}.{key} is a {Name(owner)} setting, but the config's task is {Name(config.Task)}, " +
                "which never reads it; remove it (or set task)");
        }
    }
}
