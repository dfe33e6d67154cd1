using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MathNet.Numerics.Statistics;
using Vim.Core;
using Vim.Core.Diagnostics;
using Vim.Core.Distributed;
using Vim.Core.Engine;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim bench train CONFIG [--steps 10] [--warmup 2] [--optimizer both|fused|torchsharp] [--out DIR] [--set k=v]`: where a
/// training step of the config's model spends its time (the `vim train --profile` table per optimiser path), and with
/// `--optimizer both` the speed of the native fused optimiser step against the TorchSharp one, paired step by step; with
/// `--backward-breakdown` also where autograd's backward pass spends its time, by model component (<see cref="BackwardProfiler"/>).
/// </summary>
public static class BenchTrainCommand
{
    /// <summary>The optimiser implementations one run can time.</summary>
    public enum OptimizerPath { Fused, TorchSharp }

    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML) whose training step is timed." };
        var steps = new Option<int>("--steps")
        {
            Description = "Timed optimiser steps per path (with --optimizer both, the paths alternate step by step: 2×N timed steps).",
            DefaultValueFactory = _ => 10,
        };
        var warmup = new Option<int>("--warmup")
        {
            Description = "Untimed optimiser steps first (at least 1: the first timed step starts where a warm-up step ended).",
            DefaultValueFactory = _ => 2,
        };
        var optimizer = new Option<string>("--optimizer")
        {
            Description = "both: alternate the native fused step and TorchSharp's per-parameter ops and report the paired speed-up; " +
                "fused or torchsharp: that path alone.",
            DefaultValueFactory = _ => "both",
        };
        var backwardBreakdown = new Option<bool>("--backward-breakdown")
        {
            Description = "Also time the backward pass by model component (backbone embed, mixer pieces, neck, RPN head, box stages, " +
                "mask head, decode heads, …): marks in the forward whose backward notes the time, each component's self time per step, " +
                "and the marks' own measured cost.",
        };
        var output = new Option<string>("--out") { Description = "Output folder for train.json.", DefaultValueFactory = _ => Path.Combine("artifacts", "bench", "train") };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("train", "Training-step speed of a config's model on its training data, as `vim train` runs it (no evaluation, " +
            "no checkpoints but the last): per optimiser path the share of each part of the step (data, forward with the model's " +
            "stages, backward, optimizer, ema), and the paired speed-up of the native fused AdamW/SGD step over TorchSharp's ops.");
        command.Arguments.Add(configArg);
        foreach (var option in new Option[] { steps, warmup, optimizer, backwardBreakdown, output, set }) command.Options.Add(option);
        command.SetAction(parse =>
        {
            var settings = new Settings(
                BenchCommand.Positive(parse.GetValue(steps), "--steps"),
                BenchCommand.Positive(parse.GetValue(warmup), "--warmup"),
                ParsePaths(parse.GetValue(optimizer)!),
                parse.GetValue(backwardBreakdown));
            var dir = parse.GetValue(output)!;
            OutputFolder.Check(dir, "--out");
            var report = Run(parse.GetValue(configArg)!, parse.GetValue(set) ?? [], settings, Console.Out);
            Print(report, Console.Out);
            Directory.CreateDirectory(dir);
            var json = Path.Combine(dir, "train.json");
            File.WriteAllText(json, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {json}");
            return 0;
        });
        return command;
    }

    public sealed record Settings(int Steps, int Warmup, IReadOnlyList<OptimizerPath> Paths, bool BackwardBreakdown = false);

    /// <summary>One path's totals over its timed steps: the step (from one optimiser step's end to the next's) and each
    /// profiled stage inside it; with the backward breakdown, each component's self time in backward summed over the steps
    /// and the marks that fired.</summary>
    public sealed record PathProfile(string Path, int Steps, double StepMilliseconds, double StepCpuMilliseconds,
        IReadOnlyList<StageProfiler.StageTotal> Stages, IReadOnlyList<double> StepMillisecondsEach,
        IReadOnlyList<BackwardProfiler.ComponentTime>? BackwardComponents = null, long BackwardMarks = 0);

    /// <summary>The run's result; the speed-ups are baseline (TorchSharp) time / fused time, medians over the rounds of
    /// one step of each path, null unless both paths ran; <paramref name="MarkCostMicroseconds"/>, with the backward
    /// breakdown, the measured wall cost of one mark (<see cref="BackwardProfiler.MarkCostMicroseconds"/>).</summary>
    public sealed record Report(string Config, int TorchThreads, IReadOnlyList<PathProfile> Paths, double? StepSpeedup, double? OptimizerSpeedup,
        double? MarkCostMicroseconds = null);

    public static IReadOnlyList<OptimizerPath> ParsePaths(string value) => value switch
    {
        "both" => [OptimizerPath.Fused, OptimizerPath.TorchSharp],
        "fused" => [OptimizerPath.Fused],
        "torchsharp" => [OptimizerPath.TorchSharp],
        _ => throw new VimException($"--optimizer: '{value}' is not one of both, fused, torchsharp"),
    };

    private static string Name(OptimizerPath path) => path == OptimizerPath.Fused ? "fused" : "torchsharp";

    /// <summary>
    /// Trains the config in a temporary work dir for warm-up + timed steps, the optimiser path of step k being
    /// paths[k mod count], and stops it (a cancelled run saves one checkpoint and skips evaluation).
    /// </summary>
    public static Report Run(string configPath, IReadOnlyList<string> overrides, Settings settings, TextWriter log)
    {
        var workDir = Path.Combine(Path.GetTempPath(), $"vim-bench-train-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var (config, _) = TrainCommand.Prepare(configPath, workDir, overrides);
        // A step is timed from one optimiser step's end to the next's: an evaluation or periodic checkpoint between them
        // would count as training. Both move to the run's end (max_epochs or max_iters, whichever counts the run), which
        // the benchmark stops before unless its steps fill the schedule, and then after its last timed step.
        config.Train.EvalInterval = 0;
        config.Train.EarlyStopping = null;
        config.Train.CheckpointInterval = config.Schedule.MaxEpochs ?? config.Schedule.IterationCount();
        using var communicator = Communicators.FromEnvironment(config.Runtime);
        if (communicator.WorldSize != 1) throw new VimException("bench train: run it as one process, not under mpirun");
        var paths = settings.Paths;
        int totalSteps = settings.Warmup + settings.Steps * paths.Count;
        var totals = paths.ToDictionary(p => p, _ => new PathTotals());
        int done = 0;
        IReadOnlyList<StageProfiler.StageTotal> previous = [];
        long previousWall = 0, previousCpu = 0;
        using var stop = new CancellationTokenSource();
        bool fusedBefore = FusedOptimizerStep.Enabled;
        FusedOptimizerStep.Enabled = paths[0] == OptimizerPath.Fused;

        void AfterStep(int iteration, IOptimizer optimizer)
        {
            var snapshot = StageProfiler.Snapshot();
            long wall = Stopwatch.GetTimestamp(), cpu = ResourceUsage.ProcessCpuMicroseconds();
            var backwardPasses = BackwardProfiler.TakeEnded();
            int step = done++;
            if (step >= settings.Warmup)
            {
                var path = paths[step % paths.Count];
                int round = (step - settings.Warmup) / paths.Count;
                double ms = (wall - previousWall) * 1000.0 / Stopwatch.Frequency;
                var pathTotals = totals[path];
                pathTotals.Steps.Add((ms, (cpu - previousCpu) / 1000.0));
                var sums = pathTotals.Stages;
                // The iteration stage is still open here (it closes after the EMA): the step's own interval stands for it.
                foreach (var stage in snapshot.Where(s => s.Stage != TrainingStages.Iteration))
                {
                    var before = previous.FirstOrDefault(s => s.Stage == stage.Stage);
                    sums.TryGetValue(stage.Stage, out var sum);
                    double stageMs = stage.Milliseconds - (before?.Milliseconds ?? 0);
                    sums[stage.Stage] = (sum.Ms + stageMs, sum.Cpu + stage.CpuMilliseconds - (before?.CpuMilliseconds ?? 0),
                        sum.Calls + stage.Calls - (before?.Calls ?? 0), stage.Parent);
                    if (stage.Stage == TrainingStages.Optimizer) pathTotals.OptimizerMsByRound[round] = stageMs;
                }
                foreach (var pass in backwardPasses)
                {
                    pathTotals.BackwardMarks += pass.Marks;
                    foreach (var component in pass.Components)
                    {
                        pathTotals.Backward.TryGetValue(component.Component, out var sum);
                        pathTotals.Backward[component.Component] = (sum.Ms + component.Milliseconds, sum.Cpu + component.CpuMilliseconds);
                    }
                }
            }
            (previous, previousWall, previousCpu) = (snapshot, wall, cpu);
            if (done == totalSteps) stop.Cancel();
            FusedOptimizerStep.Enabled = paths[done % paths.Count] == OptimizerPath.Fused;
        }

        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"bench train {configPath}: {settings.Warmup} warm-up and {settings.Steps} timed step(s) per path ({string.Join(", ", paths.Select(Name))}), " +
            $"{TorchSharp.torch.get_num_threads()} torch threads"));
        double? markCost = null;
        if (settings.BackwardBreakdown)
        {
            markCost = BackwardProfiler.MarkCostMicroseconds();
            log.WriteLine(FormattableString.Invariant($"backward breakdown on: one mark costs {markCost:F1} µs of backward (median of 5 chains of 2,000)"));
            BackwardProfiler.Enable(true);
        }
        StageProfiler.Start();
        try
        {
            TrainCommand.Train(config, workDir, null, communicator, stop.Token, AfterStep);
        }
        finally
        {
            StageProfiler.Stop();
            BackwardProfiler.Enable(false);
            BackwardProfiler.TakeEnded();
            FusedOptimizerStep.Enabled = fusedBefore;
            if (Directory.Exists(workDir)) Directory.Delete(workDir, recursive: true);
        }
        if (done < totalSteps)
            throw new VimException($"bench train: {configPath}'s schedule ended after {done} optimiser steps; the benchmark needs {totalSteps} " +
                "(--warmup + --steps × paths): raise schedule.max_iters with --set");

        var profiles = paths.Select(path =>
        {
            var pathTotals = totals[path];
            var times = pathTotals.Steps;
            var stages = pathTotals.Stages.Select(kv => new StageProfiler.StageTotal(kv.Key, kv.Value.Ms, kv.Value.Cpu, kv.Value.Calls, kv.Value.Parent))
                .Prepend(new StageProfiler.StageTotal(TrainingStages.Iteration, times.Sum(t => t.Ms), times.Sum(t => t.Cpu), times.Count))
                .ToList();
            var backward = settings.BackwardBreakdown
                ? pathTotals.Backward.Select(kv => new BackwardProfiler.ComponentTime(kv.Key, kv.Value.Ms, kv.Value.Cpu)).ToList()
                : null;
            return new PathProfile(Name(path), times.Count, times.Sum(t => t.Ms), times.Sum(t => t.Cpu), stages, times.Select(t => t.Ms).ToList(),
                backward, pathTotals.BackwardMarks);
        }).ToList();
        bool paired = paths.Count == 2;
        // A path's k-th timed step is its round k: the paths take the timed steps in turn.
        Dictionary<int, double> StepMsByRound(OptimizerPath path) => totals[path].Steps.Select((t, round) => (t.Ms, round)).ToDictionary(t => t.round, t => t.Ms);
        return new Report(configPath, TorchSharp.torch.get_num_threads(), profiles,
            paired ? PairedRounds.MedianRatio(StepMsByRound(OptimizerPath.TorchSharp), StepMsByRound(OptimizerPath.Fused)) : null,
            paired ? PairedRounds.MedianRatio(totals[OptimizerPath.TorchSharp].OptimizerMsByRound, totals[OptimizerPath.Fused].OptimizerMsByRound) : null, markCost);
    }

    /// <summary>One path's running sums over its timed steps, as <see cref="Run"/> collects them.</summary>
    private sealed class PathTotals
    {
        /// <summary>Each timed step's wall and CPU milliseconds, in order: entry k is the path's round k.</summary>
        public readonly List<(double Ms, double Cpu)> Steps = [];
        public readonly Dictionary<string, (double Ms, double Cpu, long Calls, string? Parent)> Stages = [];
        public readonly Dictionary<int, double> OptimizerMsByRound = [];
        public readonly Dictionary<string, (double Ms, double Cpu)> Backward = [];
        public long BackwardMarks;
    }

    public static void Print(Report report, TextWriter output)
    {
        foreach (var path in report.Paths)
        {
            output.WriteLine();
            output.WriteLine(FormattableString.Invariant(
                $"optimizer path {path.Path}: median step {path.StepMillisecondsEach.Median():F1} ms (\"iteration\" below = one optimiser step)"));
            TrainCommand.PrintProfile(path.Stages, output);
            if (path.BackwardComponents is { } components) PrintBackward(path, components, report.MarkCostMicroseconds, output);
        }
        if (report.StepSpeedup is { } step && report.OptimizerSpeedup is { } optimizer)
        {
            output.WriteLine();
            output.WriteLine(FormattableString.Invariant(
                $"fused vs torchsharp (median over {report.Paths[0].Steps} paired rounds of time torchsharp / time fused): step {step:F3}×, optimizer {optimizer:F2}×"));
        }
    }

    /// <summary>
    /// The backward pass by component, per step: each component's self time (a path "a/b" is part of "a", whose own row is
    /// what its parts leave), its inclusive time (with its parts), and its share of the pass's CPU time; then the pass's
    /// total and the marks' estimated cost in it.
    /// </summary>
    public static void PrintBackward(PathProfile path, IReadOnlyList<BackwardProfiler.ComponentTime> components, double? markCost, TextWriter output)
    {
        int steps = Math.Max(1, path.Steps);
        double totalCpu = components.Sum(c => c.CpuMilliseconds), totalMs = components.Sum(c => c.Milliseconds);
        output.WriteLine();
        output.WriteLine("backward by component, per step (self: the component's own ops; with parts: its nested components too):");
        output.WriteLine(FormattableString.Invariant($"  {"component",-52} {"self ms",9} {"self CPU ms",12} {"CPU share",9} {"with parts CPU ms",18}"));
        foreach (var component in components.OrderBy(c => c.Component, StringComparer.Ordinal))
        {
            double inclusive = components.Where(c => c.Component == component.Component || c.Component.StartsWith(component.Component + "/", StringComparison.Ordinal))
                .Sum(c => c.CpuMilliseconds);
            output.WriteLine(FormattableString.Invariant(
                $"  {component.Component,-52} {component.Milliseconds / steps,9:F1} {component.CpuMilliseconds / steps,12:F1} {100 * component.CpuMilliseconds / Math.Max(totalCpu, 1e-9),8:F1}% {inclusive / steps,18:F1}"));
        }
        double marksPerStep = path.BackwardMarks / (double)steps;
        string markShare = markCost is { } cost
            ? FormattableString.Invariant($", their estimated cost {marksPerStep * cost / 1000:F1} ms ({100 * marksPerStep * cost / 1000 / Math.Max(totalMs / steps, 1e-9):F1} % of the pass's wall time)")
            : "";
        output.WriteLine(FormattableString.Invariant(
            $"  backward pass: {totalMs / steps:F1} ms wall, {totalCpu / steps:F1} ms CPU per step; {marksPerStep:F0} marks per step{markShare}"));
    }
}
