using System.CommandLine;

namespace Vim.Tools.Commands;

/// <summary>`vim bench`: benchmarks (timings, not tests). Each kind of benchmark is a subcommand.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks: speed and memory measurements written as CSV/JSON.");
        AddSubcommands(bench);
        return bench;
    }

    /// <summary>One line per benchmark subcommand.</summary>
    private static void AddSubcommands(Command bench)
    {
        bench.Subcommands.Add(BenchScanCommand.Create());
        bench.Subcommands.Add(BenchBackboneCommand.CreateBackbone());
    }
}
