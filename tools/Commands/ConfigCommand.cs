using System.CommandLine;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Transforms;

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
                "vim train on one process would run (counted by the training loader: the training data must be readable).",
        };
        var show = new Command("show", "Print the config after _base_ merging and --set overrides, checked against the schema " +
            "(data.train_pipeline and data.test_pipeline against the task's loader and model too).");
        show.Arguments.Add(configArg);
        show.Options.Add(setOption);
        show.Options.Add(resolvedOption);
        show.SetAction(parse =>
        {
            var (config, tree) = ExperimentConfig.Load(parse.GetValue(configArg)!, parse.GetValue(setOption) ?? []);
            DataPipelines.Check(config);
            bool resolved = parse.GetValue(resolvedOption);
            // Counted before anything is printed, so unreadable data is refused without half a config on the screen.
            var epochs = resolved && config.Schedule.MaxEpochs is not null ? EpochsInIterations(TrainingEpochs.Resolve(config, processes: 1)) : "";
            Console.Write(ConfigWriter.ToYaml(resolved ? ConfigBinder.ToNode(config) : tree) + epochs);
            return 0;
        });
        return show;
    }

    /// <summary>An epoch-counted schedule's settings in iterations, as YAML comments after the config (which keeps its epochs).</summary>
    public static string EpochsInIterations(TrainingLength length)
    {
        var schedule = length.Config.Schedule;
        var train = length.Config.Train;
        return $"# schedule.max_epochs {length.MaxEpochs} × {length.IterationsPerEpoch} iterations per epoch (the training loader's, one process) " +
            $"= {length.MaxIters} iterations\n# in iterations: milestones [{string.Join(", ", schedule.Milestones)}], " +
            $"eval_interval {train.EvalInterval}, checkpoint_interval {train.CheckpointInterval}\n";
    }
}
