using System.CommandLine;
using Vim.Core.Config;
using Vim.Core.Engine;

namespace Vim.Tools.Commands;

/// <summary>`vim config show CONFIG [--set k=v ...] [--resolved]`: the merged, type-checked config; `vim config lr`: its
/// learning-rate schedule per optimiser group (<see cref="ConfigLrCommand"/>).</summary>
public static class ConfigCommand
{
    public static Command Create()
    {
        var command = new Command("config", "Inspect experiment configs.");
        command.Subcommands.Add(CreateShow());
        command.Subcommands.Add(ConfigLrCommand.Create());
        return command;
    }

    /// <summary>The repeatable `--set a.b.c=value` option shared by every verb that reads a config.</summary>
    public static Option<string[]> CreateSetOption() => new("--set")
    {
        Description = "Override a config value, e.g. --set optimizer.lr=2e-4 (repeatable; the value is YAML).",
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.ZeroOrMore,
    };

    private static Command CreateShow()
    {
        var configArg = new Argument<string>("config") { Description = "A YAML config file (configs/...)." };
        var setOption = CreateSetOption();
        var resolvedOption = new Option<bool>("--resolved")
        {
            Description = "Print every schema key with its effective value, defaults included; with schedule.max_epochs, also the iterations " +
                "vim train on --processes processes would run and where its milestones, evaluations, checkpoints, val_begin and data.pipeline_switch fall " +
                "(counted by the training loader: the training data must be readable).",
        };
        var processesOption = ConfigLrCommand.CreateProcessesOption();
        var show = new Command("show", "Print the config after _base_ merging and --set overrides, checked against the schema " +
            "and, without reading data, as training checks its data and test settings (data.mosaic, data.mixup, data.filter_cfg, " +
            "data.train_pipeline and data.test_pipeline against the task's loader and model, …).");
        show.Arguments.Add(configArg);
        show.Options.Add(setOption);
        show.Options.Add(resolvedOption);
        show.Options.Add(processesOption);
        show.SetAction(parse =>
        {
            Console.Write(Show(parse.GetValue(configArg)!, parse.GetValue(setOption) ?? [], parse.GetValue(resolvedOption), parse.GetValue(processesOption)));
            return 0;
        });
        return show;
    }

    /// <summary>
    /// What `vim config show` prints: the merged tree, or with <paramref name="resolved"/> every key, and for an epoch-counted
    /// schedule its iterations on <paramref name="processes"/> processes, counted as `vim config lr --processes` counts them.
    /// </summary>
    public static string Show(string configPath, IReadOnlyList<string> overrides, bool resolved, int processes = 1)
    {
        ConfigLrCommand.CheckProcesses(processes);
        var (config, tree) = ExperimentConfig.Load(configPath, overrides);
        TrainingEpochs.CheckDataSettings(config);
        // Counted before anything is printed, so unreadable data is refused without half a config on the screen.
        var inIterations = !resolved ? ""
            : config.Schedule.MaxEpochs is not null ? EpochsInIterations(TrainingEpochs.Resolve(config, processes), processes, PipelineSwitch.Read(config))
            : new LrSchedule(config.Schedule).Chained is { } chained ? $"# {chained.Describe()}\n"
            : "";
        return ConfigWriter.ToYaml(resolved ? ConfigBinder.ToNode(config) : tree) + inIterations;
    }

    /// <summary>
    /// An epoch-counted schedule's settings in iterations, as YAML comments after the config (which keeps its epochs): the
    /// milestones, or each schedule.param_scheduler entry's begin and end; with
    /// <paramref name="pipelineSwitch"/> (read from the epoch-counted config) the iteration whose batch is the first it switches.
    /// </summary>
    public static string EpochsInIterations(TrainingLength length, int processes, PipelineSwitch? pipelineSwitch = null)
    {
        var schedule = length.Config.Schedule;
        var train = length.Config.Train;
        var chained = new LrSchedule(schedule).Chained;
        return $"# schedule.max_epochs {length.MaxEpochs} × {length.IterationsPerEpoch} iterations per epoch (the training loader's, " +
            $"{(processes == 1 ? "one process" : $"{processes} processes")}) = {length.MaxIters} iterations\n# in iterations: " +
            (chained is null ? $"milestones [{string.Join(", ", schedule.Milestones)}], " : "") +
            $"eval_interval {train.EvalInterval}, checkpoint_interval {train.CheckpointInterval}, val_begin {train.ValBegin}" +
            (pipelineSwitch is null ? "" : $", pipeline_switch.at {pipelineSwitch.Iteration(length)}") + "\n" +
            (chained is null ? "" : $"# {chained.Describe()}\n");
    }
}
