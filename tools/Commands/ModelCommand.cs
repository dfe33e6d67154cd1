using System.CommandLine;
using Vim.Core.Models;

namespace Vim.Tools.Commands;

/// <summary>`vim model keys MODEL`, `vim model list` and `vim model flops TARGET`: the registered models, their state dicts and complexity.</summary>
public static class ModelCommand
{
    public static Command Create()
    {
        var command = new Command("model", "Inspect the registered models.");

        var keys = new Command("keys", "Print <key><TAB>[shape] for every state-dict entry of MODEL, in PyTorch order.");
        var name = new Argument<string>("model") { Description = "A registered model name (see `vim model list`)." };
        keys.Arguments.Add(name);
        keys.SetAction(parseResult => ReportingUserErrors(() =>
        {
            using var model = ModelRegistry.Create(parseResult.GetValue(name)!);
            var output = Console.Out;
            foreach (var (key, value) in StateDictOrder.Entries(model))
                output.WriteLine($"{key}\t[{string.Join(", ", value.shape)}]");
            return 0;
        }));

        var list = new Command("list", "List the registered models with their parameter counts.");
        list.SetAction(_ =>
        {
            foreach (var entry in ModelRegistry.All)
            {
                using var model = ModelRegistry.Create(entry.Name);
                Console.Out.WriteLine($"{entry.Name}\t{StateDictOrder.ParameterCount(model):N0}\t{entry.Description}");
            }
            return 0;
        });

        command.Subcommands.Add(keys);
        command.Subcommands.Add(list);
        command.Subcommands.Add(ModelFlopsCommand.Create());
        return command;
    }

    private static int ReportingUserErrors(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Vim.Core.VimException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
