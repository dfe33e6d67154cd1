using System.Diagnostics;
using NUnit.Framework;

namespace Vim.Tests;

/// <summary>The vim command line: run as a process of its own (VimDense.dll beside the tests, or a launcher such as mpirun), or in this process with its console captured and its refusals checked.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    /// <summary>Runs <paramref name="run"/> (e.g. <c>VimCli.Run</c> in this process) with Console.Out sent to <paramref name="console"/>.</summary>
    public static int WithConsole(TextWriter console, Func<int> run)
    {
        var original = Console.Out;
        Console.SetOut(console);
        try
        {
            return run();
        }
        finally
        {
            Console.SetOut(original);
        }
    }

    /// <summary>
    /// Each command line of <paramref name="cases"/> fails with exit code 1 and an error naming every expected part, and
    /// without naming <paramref name="absentCheckpoint"/>: it was refused before the checkpoint was looked for.
    /// </summary>
    public static void AssertRefusedBeforeCheckpoint(IEnumerable<(string[] Arguments, string[] Expected)> cases, string absentCheckpoint)
    {
        foreach (var (arguments, expected) in cases)
        {
            var errors = new StringWriter();
            Assert.That(Vim.Tools.VimCli.Run(arguments, errors), Is.EqualTo(1), string.Join(' ', arguments));
            foreach (var part in expected) Assert.That(errors.ToString(), Does.Contain(part), string.Join(' ', arguments));
            Assert.That(errors.ToString(), Does.Not.Contain(absentCheckpoint), "refused before the checkpoint is looked for");
        }
    }

    /// <summary>Runs <c>dotnet VimDense.dll ARGS</c>; a run past <paramref name="limit"/> is killed and fails the test.</summary>
    public static Result Run(TimeSpan limit, params string[] args) =>
        RunProgram(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", [Path.Combine(AppContext.BaseDirectory, "VimDense.dll"), .. args], limit);

    /// <summary>Open MPI's mpirun on PATH, or null where it is not installed (the multi-process tests are then skipped).</summary>
    public static string? Mpirun => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, "mpirun")).FirstOrDefault(File.Exists);

    /// <summary>
    /// Runs <c>mpirun -np PROCESSES dotnet VimDense.dll ARGS</c> on one machine over loopback (allowed as root and with
    /// more processes than cores, as the test machines need); a job past <paramref name="limit"/> is killed and fails the test.
    /// </summary>
    public static Result RunUnderMpirun(int processes, TimeSpan limit, params string[] args)
    {
        string[] mpirunArgs =
        [
            "--allow-run-as-root", "--oversubscribe", "-np", processes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo",
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", Path.Combine(AppContext.BaseDirectory, "VimDense.dll"), .. args,
        ];
        return RunProgram(Mpirun ?? throw new InvalidOperationException("mpirun is not installed"), mpirunArgs, limit);
    }

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
