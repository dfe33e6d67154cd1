using System.CommandLine;

namespace Vim.Tools;

/// <summary>The `vim` command line: one root command, verbs registered in one visible place.</summary>
public static class VimCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("VimDense: dense prediction (COCO detection, ADE20k segmentation) on a Vision Mamba backbone.");
        root.Subcommands.Add(BenchCommand.Create());
        return root;
    }

    public static int Run(string[] args) => Build().Parse(args).Invoke();
}
