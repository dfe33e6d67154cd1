using System.Diagnostics;
using NUnit.Framework;

namespace Vim.Tests;

/// <summary>The vim command line (VimDense.dll beside the tests), or a launcher such as mpirun, run as a process of its own.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    /// <summary>Runs <c>dotnet VimDense.dll ARGS</c>; a run past <paramref name="limit"/> is killed and fails the test.</summary>
    public static Result Run(TimeSpan limit, params string[] args) =>
        RunProgram(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", [Path.Combine(AppContext.BaseDirectory, "VimDense.dll"), .. args], limit);

    /// <summary>Runs any program with its arguments as given (no shell); a run past <paramref name="limit"/> is killed (hung) and fails the test.</summary>
    public static Result RunProgram(string program, IEnumerable<string> args, TimeSpan limit)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', start.ArgumentList)} still running after {limit.TotalSeconds} s (hung)");
        }
        process.WaitForExit();
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
