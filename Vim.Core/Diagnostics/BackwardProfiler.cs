using System.Diagnostics;
using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Diagnostics;

/// <summary>
/// Where a backward pass spends its time, by the model's components (`vim bench train --backward-breakdown`). Autograd
/// has no stages, so the forward marks them: a stage opened with <see cref="Open"/> passes its inputs through
/// <see cref="StageMarks.Input"/> and its results through <see cref="StageMarks.Output"/>, identity autograd functions
/// whose backward notes the time and the component that runs from then on. Libtorch's CPU engine runs the ready node
/// with the highest sequence number first, and a node's gradient inputs all come from nodes created after it, so a
/// backward runs its nodes in the reverse of their creation order: between an output mark (created after the stage's last
/// op) and its input mark (created before the first) run exactly the backward of the ops the stage created, weight
/// gradients' accumulation included. Our own autograd functions, which run several pieces in one backward node, time their
/// pieces with <see cref="Region"/>.
/// </summary>
/// <remarks>
/// A component's time is its own (self) time: the interval from a mark or region boundary to the next goes to the
/// component that was current then, so nested components' times add up to the pass. Time before the first mark (the loss
/// terms' backward, outside every stage) goes to <see cref="Outside"/>. Off by default, when <see cref="Open"/> costs one
/// static read and marks nothing. The method's error is its own cost: each mark is one more autograd node, a managed
/// callback in backward (`vim bench train` measures it per mark and reports the total beside the breakdown); the
/// forward's marks add aliases and change no value. One process, one backward at a time.
/// </remarks>
public static class BackwardProfiler
{
    /// <summary>The component of the time no mark claims: loss terms, their sum, and whatever runs outside every stage.</summary>
    public const string Outside = "(outside stages: loss terms and sum)";

    private static readonly object Gate = new();
    private static bool enabled;
    private static Pass? pass;
    // The open forward stages' paths on this thread, innermost last.
    [ThreadStatic] private static List<string>? openPaths;

    public static bool Enabled => enabled;

    /// <summary>Marks stages in every forward from now on (their backward records only inside <see cref="BeginPass"/>).</summary>
    public static void Enable(bool on)
    {
        lock (Gate) enabled = on;
    }

    private sealed class Pass
    {
        public readonly List<(long Ticks, long CpuMicroseconds, string Component)> Events = [];
        public string Current = Outside;
        public int Marks;
    }

    /// <summary>One component's self time (over one pass, or summed over several): wall and process-CPU milliseconds.</summary>
    public sealed record ComponentTime(string Component, double Milliseconds, double CpuMilliseconds);

    /// <summary>One backward pass's timeline: its components' self times, in the order they first ran, and the marks that fired.</summary>
    public sealed record PassTimes(IReadOnlyList<ComponentTime> Components, int Marks);

    /// <summary>Starts recording the backward pass about to run (the trainer calls it around <c>backward()</c>).</summary>
    public static void BeginPass()
    {
        if (!enabled) return;
        var started = new Pass();
        started.Events.Add((Stopwatch.GetTimestamp(), ResourceUsage.ProcessCpuMicroseconds(), Outside));
        lock (Gate) pass = started;
    }

    /// <summary>Ends the pass begun last and returns its times (null when none was recording).</summary>
    public static PassTimes? EndPass()
    {
        Pass? ended;
        lock (Gate)
        {
            ended = pass;
            pass = null;
        }
        if (ended is null) return null;
        ended.Events.Add((Stopwatch.GetTimestamp(), ResourceUsage.ProcessCpuMicroseconds(), ended.Current));
        var times = SelfTimes(ended.Events, ended.Marks);
        lock (Gate) endedPasses.Add(times);
        return times;
    }

    private static readonly List<PassTimes> endedPasses = [];

    /// <summary>The passes ended since the last call, oldest first (the benchmark takes them after each optimiser step,
    /// which follows one pass per accumulated batch).</summary>
    public static IReadOnlyList<PassTimes> TakeEnded()
    {
        lock (Gate)
        {
            var taken = endedPasses.ToList();
            endedPasses.Clear();
            return taken;
        }
    }

    /// <summary>Self time per component of a timeline whose entries say from when on which component runs; the last entry
    /// ends the timeline.</summary>
    internal static PassTimes SelfTimes(IReadOnlyList<(long Ticks, long CpuMicroseconds, string Component)> events, int marks)
    {
        var totals = new Dictionary<string, (long Ticks, long Cpu)>();
        var order = new List<string>();
        for (int i = 0; i + 1 < events.Count; i++)
        {
            var (ticks, cpu, component) = events[i];
            if (!totals.TryGetValue(component, out var sum)) order.Add(component);
            totals[component] = (sum.Ticks + events[i + 1].Ticks - ticks, sum.Cpu + events[i + 1].CpuMicroseconds - cpu);
        }
        return new PassTimes(order.Select(c => new ComponentTime(c, totals[c].Ticks * 1000.0 / Stopwatch.Frequency, totals[c].Cpu / 1000.0)).ToList(), marks);
    }

    /// <summary>
    /// The method's own cost: the wall microseconds one mark adds to a backward pass that records, the median over
    /// <paramref name="rounds"/> of (backward of a chain of <paramref name="marks"/> marks − backward of the same sum without
    /// them) ÷ marks, on a tensor small enough that the marks are all there is to time.
    /// </summary>
    public static double MarkCostMicroseconds(int marks = 2000, int rounds = 5)
    {
        if (pass is not null) throw new InvalidOperationException("BackwardProfiler: a pass is recording; measure the marks' cost outside it.");
        var costs = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            using var scope = NewDisposeScope();
            var leaf = ones(4, dtype: ScalarType.Float32, device: CPU).requires_grad_();
            var marked = leaf;
            for (int i = 0; i < marks; i++) marked = BackwardMark.Apply(marked, "calibration");
            double withMarks = TimedBackward(marked.sum());
            double without = TimedBackward(leaf.sum());
            costs.Add((withMarks - without) * 1e6 / marks);
        }
        costs.Sort();
        return costs[costs.Count / 2];
    }

    /// <summary>Seconds of one backward of <paramref name="loss"/> with a pass recording (into a throwaway timeline).</summary>
    private static double TimedBackward(Tensor loss)
    {
        long started = Stopwatch.GetTimestamp();
        lock (Gate) pass = new Pass();
        try
        {
            loss.backward();
        }
        finally
        {
            lock (Gate) pass = null;
        }
        return (Stopwatch.GetTimestamp() - started) / (double)Stopwatch.Frequency;
    }

    /// <summary>From now on the pass's time goes to <paramref name="component"/> (a mark firing, a region's ends).</summary>
    private static void Switch(string component, bool mark)
    {
        var current = pass;
        if (current is null) return;
        long ticks = Stopwatch.GetTimestamp(), cpu = ResourceUsage.ProcessCpuMicroseconds();
        lock (Gate)
        {
            if (!ReferenceEquals(pass, current)) return;
            current.Events.Add((ticks, cpu, component));
            current.Current = component;
            if (mark) current.Marks++;
        }
    }

    /// <summary>
    /// Opens forward stage <paramref name="name"/> (nested in the stages open on this thread: its component is their path
    /// and its name, "backbone/mixer"); dispose it when the stage's ops are done. Inactive unless the profiler is on,
    /// autograd is enabled, and the forward is not inside another's backward (a recomputation).
    /// </summary>
    public static StageMarks Open(string name)
    {
        if (!enabled || pass is not null || !is_grad_enabled()) return default;
        var open = openPaths ??= [];
        string parent = open.Count == 0 ? Outside : open[^1];
        string path = open.Count == 0 ? name : open[^1] + "/" + name;
        open.Add(path);
        return new StageMarks(path, parent);
    }

    /// <summary>
    /// Times the code of a backward until the returned scope is disposed as component <paramref name="name"/> inside the
    /// component current when it started ("backbone/mixer/scan"): the pieces of one of our autograd functions.
    /// </summary>
    public static RegionScope Region(string name)
    {
        var current = pass;
        if (current is null) return default;
        string outer = current.Current;
        Switch(outer == Outside ? name : outer + "/" + name, mark: false);
        return new RegionScope(outer);
    }

    public readonly struct RegionScope(string? outer) : IDisposable
    {
        public void Dispose()
        {
            if (outer is not null) Switch(outer, mark: false);
        }
    }

    /// <summary>A forward stage's marks: its inputs resume the enclosing component in backward, its outputs start its own.</summary>
    public readonly struct StageMarks(string? path, string? parent) : IDisposable
    {
        /// <summary>The stage's component path (null when inactive).</summary>
        public string? Path => path;

        /// <summary>An input of the stage: the enclosing component runs again once the gradient reaches it.</summary>
        public Tensor Input(Tensor tensor) => path is null ? tensor : BackwardMark.Apply(tensor, parent!);

        /// <summary>A result of the stage: the stage's backward starts when its gradient is complete.</summary>
        public Tensor Output(Tensor tensor) => path is null ? tensor : BackwardMark.Apply(tensor, path);

        public void Dispose()
        {
            if (path is null || openPaths is not { } open) return;
            int at = open.LastIndexOf(path);
            if (at >= 0) open.RemoveRange(at, open.Count - at);
        }
    }

    /// <summary>Identity forward; in backward it hands the gradient through and switches the pass to its component.</summary>
    private sealed class BackwardMark : torch.autograd.SingleTensorFunction<BackwardMark>
    {
        public override string Name => "VimDenseBackwardMark";

        public static Tensor Apply(Tensor tensor, string component) =>
            tensor.requires_grad ? apply(tensor, component) : tensor;

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            ctx.save_data("component", (string)vars[1]);
            // A fresh alias, not the input itself: the autograd node must own its output.
            return ((Tensor)vars[0]).alias();
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
        {
            Switch((string)ctx.get_data("component"), mark: true);
            using var scope = BackwardGradients.Begin();
            return BackwardGradients.Return([grad_output, null], grad_output);
        }
    }
}
