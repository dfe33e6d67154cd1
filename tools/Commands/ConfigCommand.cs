using System.CommandLine;
using Vim.Core.Config;
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
            Description = "Print every schema key with its effective value, defaults included.",
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
            Console.Write(ConfigWriter.ToYaml(parse.GetValue(resolvedOption) ? ConfigBinder.ToNode(config) : tree));
            return 0;
        });
        return show;
    }
}
