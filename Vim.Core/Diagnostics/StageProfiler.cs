using System.Diagnostics;

namespace Vim.Core.Diagnostics;

/// <summary>
/// Wall-clock time per named stage of a forward pass (the backbone benchmark's <c>--breakdown</c>, the inference
/// benchmark's stage breakdown) and the CPU time of the whole process over the same interval (all threads: on a
/// machine shared with other work the CPU time is the steadier figure). Off by default: <see cref="Measure"/> then
/// returns an empty token and costs one static read. CPU libtorch ops are synchronous, so a stage's time is the time
/// of its ops; on a GPU the collector passes a synchronisation that runs at both ends of every timed stage.
/// </summary>
/// <remarks>Process-wide and meant for one thread at a time (a benchmark run). A nested stage's time is counted in both
/// stages, so where the times should add up <see cref="Start"/>'s stage list keeps them apart: the inference benchmark
/// times the detector's and segmentor's own stages, not the backbone's stages inside them. `vim train --profile` times
/// every stage and reports the model's as parts of the trainer's forward.</remarks>
public static class StageProfiler
{
    private static Collection? collecting;
    private static readonly object Gate = new();
    // The timed stages open on this thread, innermost last; a token that is never disposed (the trainer leaves a skipped
    // step's backward open) is dropped when a stage it sits inside ends.
    [ThreadStatic] private static List<(long Id, string Stage, Collection Collection)>? openStages;
    private static long nextTokenId;
    // Counts Start and Stop calls: a suspension resumes only the collection that was on when it began, and only if no
    // Start or Stop has replaced or ended it since.
    private static long generation;

    internal sealed class Collection(IReadOnlySet<string>? only, Action? synchronize)
    {
        public readonly Dictionary<string, (long Ticks, long CpuMicroseconds, long Calls)> Totals = new();
        // The innermost timed stage that was open when a stage first ran: what `vim train --profile` nests it under.
        public readonly Dictionary<string, string?> Parents = new();
        public readonly IReadOnlySet<string>? Only = only;
        public readonly Action? Synchronize = synchronize;
    }

    public static bool Enabled => collecting is not null;

    /// <summary>Starts collecting (clears earlier totals).</summary>
    /// <param name="only">The stages to time; others measure nothing (null: every stage).</param>
    /// <param name="synchronize">Runs before a timed stage starts and before it ends (e.g. waiting for queued CUDA
    /// kernels), so that asynchronous work is counted in the stage that queued it.</param>
    public static void Start(IEnumerable<string>? only = null, Action? synchronize = null)
    {
        lock (Gate)
        {
            collecting = new Collection(only?.ToHashSet(StringComparer.Ordinal), synchronize);
            generation++;
        }
    }

    /// <summary>
    /// One stage's totals: wall-clock and process CPU milliseconds, and how often it ran; <paramref name="Parent"/> is the
    /// timed stage it first ran inside (null: none), whose time includes its own.
    /// </summary>
    public sealed record StageTotal(string Stage, double Milliseconds, double CpuMilliseconds, long Calls, string? Parent = null);

    /// <summary>Stops collecting and returns the totals in first-seen order.</summary>
    public static IReadOnlyList<StageTotal> Stop()
    {
        lock (Gate)
        {
            var collected = collecting;
            collecting = null;
            generation++;
            return TotalsOf(collected);
        }
    }

    /// <summary>The totals so far, in first-seen order, collection going on (`vim bench train` differences them per
    /// optimiser step); stages still open are not in them yet.</summary>
    public static IReadOnlyList<StageTotal> Snapshot()
    {
        lock (Gate) return TotalsOf(collecting);
    }

    private static List<StageTotal> TotalsOf(Collection? collected) => collected is null
        ? []
        : collected.Totals.Select(kv => new StageTotal(kv.Key, kv.Value.Ticks * 1000.0 / Stopwatch.Frequency,
            kv.Value.CpuMicroseconds / 1000.0, kv.Value.Calls, collected.Parents.GetValueOrDefault(kv.Key))).ToList();

    /// <summary>
    /// Times nothing until the returned scope is disposed, then collects into the same totals again: what runs inside a
    /// profiled run but is not its subject (the trainer's evaluations under `vim train --profile`).
    /// </summary>
    public static IDisposable Suspend()
    {
        lock (Gate)
        {
            var suspended = collecting;
            collecting = null;
            return new Resumption(suspended, generation);
        }
    }

    private sealed class Resumption(Collection? suspended, long suspendedIn) : IDisposable
    {
        public void Dispose()
        {
            lock (Gate)
                if (suspended is not null && collecting is null && generation == suspendedIn) collecting = suspended;
        }
    }

    /// <summary>Times the code until the returned token is disposed, under <paramref name="stage"/>.</summary>
    public static Token Measure(string stage)
    {
        var current = collecting;
        if (current is null || (current.Only is not null && !current.Only.Contains(stage))) return default;
        var open = openStages ??= [];
        string? parent = null;
        for (int i = open.Count - 1; i >= 0 && parent is null; i--)
            if (ReferenceEquals(open[i].Collection, current)) parent = open[i].Stage;
        lock (Gate) current.Parents.TryAdd(stage, parent);
        long id = Interlocked.Increment(ref nextTokenId);
        open.Add((id, stage, current));
        current.Synchronize?.Invoke();
        return new Token(stage, current, id, Stopwatch.GetTimestamp(), ResourceUsage.ProcessCpuMicroseconds());
    }

    public readonly struct Token : IDisposable
    {
        private readonly string? stage;
        private readonly Collection? collection;
        private readonly long id;
        private readonly long started;
        private readonly long startedCpu;

        internal Token(string stage, Collection collection, long id, long started, long startedCpu)
        {
            this.stage = stage;
            this.collection = collection;
            this.id = id;
            this.started = started;
            this.startedCpu = startedCpu;
        }

        public void Dispose()
        {
            if (stage is null) return;
            long token = id;
            if (openStages is { } open && open.FindLastIndex(entry => entry.Id == token) is var at and >= 0)
                open.RemoveRange(at, open.Count - at);
            collection!.Synchronize?.Invoke();
            long elapsed = Stopwatch.GetTimestamp() - started;
            long cpu = ResourceUsage.ProcessCpuMicroseconds() - startedCpu;
            lock (Gate)
            {
                // A stage still open when its collection stopped (or a new one started) belongs to neither.
                if (!ReferenceEquals(collecting, collection)) return;
                var totals = collection.Totals;
                totals.TryGetValue(stage, out var sum);
                totals[stage] = (sum.Ticks + elapsed, sum.CpuMicroseconds + cpu, sum.Calls + 1);
            }
        }
    }
}
