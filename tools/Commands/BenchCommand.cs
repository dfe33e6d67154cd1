using System.CommandLine;
using System.Numerics;
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
        bench.Subcommands.Add(BenchTrainCommand.Create());
    }

    /// <summary>A count option that must be at least 1, refused naming the option.</summary>
    internal static T Positive<T>(T value, string option) where T : INumber<T> =>
        value > T.Zero ? value : throw new VimException($"{option} must be positive, got {value}.");

    /// <summary>A count option that may be 0 (e.g. --warmup), refused naming the option when negative.</summary>
    internal static T NonNegative<T>(T value, string option) where T : INumber<T> =>
        value >= T.Zero ? value : throw new VimException($"{option} must be 0 or more, got {value}.");
}
