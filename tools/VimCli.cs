using System.CommandLine;
using Vim.Core;
using Vim.Tools.Commands;

namespace Vim.Tools;

/// <summary>The `vim` command line: one root command, every verb registered here in one visible place.</summary>
public static class VimCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("VimDense: dense prediction (COCO detection, ADE20k segmentation) on a Vision Mamba backbone.");
        root.Subcommands.Add(ConfigCommand.Create());
        root.Subcommands.Add(EnvCommand.Create());
        root.Subcommands.Add(CheckpointCommand.Create());
        root.Subcommands.Add(ModelCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(DataCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(TestCommand.Create());
        root.Subcommands.Add(InferCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(DistSelfTestCommand.Create());
        return root;
    }

    /// <summary>Runs the CLI; user errors (<see cref="VimException"/>) and file-system refusals print one clear line instead of a stack trace.</summary>
    public static int Run(string[] args, TextWriter? error = null)
    {
        error ??= Console.Error;
        try
        {
            return Build().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (VimException e)
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A folder that cannot be created or written, a full disk: the system's message names the path, and a
            // stack trace would add nothing to it.
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
