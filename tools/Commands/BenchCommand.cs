using System.CommandLine;
using Vim.Core;

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
        bench.Subcommands.Add(BenchInferCommand.Create());
    }

    /// <summary>A count option that must be at least 1, refused naming the option.</summary>
    internal static int Positive(int value, string option) =>
        value > 0 ? value : throw new VimException($"{option} must be positive, got {value}.");
}
