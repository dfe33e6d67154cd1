using System.Diagnostics;

namespace Vim.Core.Diagnostics;

/// <summary>
/// Wall-clock time per named stage of a forward pass (the backbone benchmark's <c>--breakdown</c>).
/// and the CPU time of the whole process over the same interval (all threads: on a machine shared with
/// other work the CPU time is the steadier figure). Off by default: <see cref="Measure"/> then returns
/// an empty token and costs one static read. CPU libtorch ops are synchronous, so a stage's time is
/// the time of its ops.
/// </summary>
/// <remarks>Process-wide and meant for one thread at a time (a benchmark run); stages should not nest
/// (a nested stage's time would be counted in both).</remarks>
public static class StageProfiler
{
    private static Dictionary<string, (long Ticks, long CpuMicroseconds, long Calls)>? totals;
    private static readonly object Gate = new();

    public static bool Enabled => totals is not null;

    /// <summary>Starts collecting (clears earlier totals).</summary>
    public static void Start()
    {
        lock (Gate) totals = new Dictionary<string, (long, long, long)>();
    }

    /// <summary>One stage's totals: wall-clock and process CPU milliseconds, and how often it ran.</summary>
    public sealed record StageTotal(string Stage, double Milliseconds, double CpuMilliseconds, long Calls);

    /// <summary>Stops collecting and returns the totals in first-seen order.</summary>
    public static IReadOnlyList<StageTotal> Stop()
    {
        lock (Gate)
        {
            var collected = totals ?? new Dictionary<string, (long, long, long)>();
            totals = null;
            return collected.Select(kv => new StageTotal(kv.Key, kv.Value.Ticks * 1000.0 / Stopwatch.Frequency,
                kv.Value.CpuMicroseconds / 1000.0, kv.Value.Calls)).ToList();
        }
    }

    /// <summary>Times the code until the returned token is disposed, under <paramref name="stage"/>.</summary>
    public static Token Measure(string stage) => totals is null ? default : new Token(stage, Stopwatch.GetTimestamp(), ResourceUsage.ProcessCpuMicroseconds());

    public readonly struct Token : IDisposable
    {
        private readonly string? stage;
        private readonly long started;
        private readonly long startedCpu;

        internal Token(string stage, long started, long startedCpu)
        {
            this.stage = stage;
            this.started = started;
            this.startedCpu = startedCpu;
        }

        public void Dispose()
        {
            if (stage is null) return;
            long elapsed = Stopwatch.GetTimestamp() - started;
            long cpu = ResourceUsage.ProcessCpuMicroseconds() - startedCpu;
            lock (Gate)
            {
                if (totals is null) return;
                totals.TryGetValue(stage, out var sum);
                totals[stage] = (sum.Ticks + elapsed, sum.CpuMicroseconds + cpu, sum.Calls + 1);
            }
        }
    }
}
