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

    /// <summary>Loads, merges and type-checks a config file with its bases and overrides.</summary>
    public static (ExperimentConfig Config, ConfigMap Tree) Load(string path, IEnumerable<string>? overrides = null)
    {
        var tree = ConfigLoader.Load(path, overrides);
        return (ConfigBinder.Bind<ExperimentConfig>(tree), tree);
    }
}
