using NUnit.Framework;
using Vim.Core.Diagnostics;
using Vim.Tools.Commands;

namespace Vim.Tests.Core;

/// <summary>`vim train --profile`: evaluation suspended from the totals, and the printed table's per-iteration arithmetic.</summary>
[NonParallelizable]
public class TrainingProfileTests
{
    [Test]
    public void SuspendedStagesAreNotCountedAndCollectionResumesIntoTheSameTotals()
    {
        StageProfiler.Start();
        try
        {
            using (StageProfiler.Measure("train")) { }
            using (StageProfiler.Suspend())
            {
                Assert.That(StageProfiler.Enabled, Is.False, "a suspended profiler must not time anything");
                using (StageProfiler.Measure("evaluation")) { }
                using (StageProfiler.Measure("train")) { }
            }
            Assert.That(StageProfiler.Enabled, Is.True);
            using (StageProfiler.Measure("train")) { }
        }
        finally
        {
            var totals = StageProfiler.Stop();
            Assert.That(totals.Select(t => t.Stage), Is.EqualTo(new[] { "train" }));
            Assert.That(totals[0].Calls, Is.EqualTo(2), "the call inside the suspension is not counted, those before and after are");
        }
    }

    [Test]
    public void SuspendingWhileNotProfilingLeavesTheProfilerOff()
    {
        using (StageProfiler.Suspend()) { }
        Assert.That(StageProfiler.Enabled, Is.False);
    }

    [Test]
    public void StoppingDuringASuspensionLeavesTheProfilerOffWhenItEnds()
    {
        StageProfiler.Start();
        var suspension = StageProfiler.Suspend();
        StageProfiler.Stop();
        suspension.Dispose();
        Assert.That(StageProfiler.Enabled, Is.False, "a suspension must not resume a collection stopped meanwhile");

        StageProfiler.Start();
        suspension = StageProfiler.Suspend();
        StageProfiler.Start(["other"]);
        StageProfiler.Stop();
        suspension.Dispose();
        Assert.That(StageProfiler.Enabled, Is.False, "nor one a later Start replaced");
    }

    [Test]
    public void AProfiledRunPrintsItsTableAndLeavesTheProfilerOffHoweverItEnds()
    {
        using var output = new StringWriter();
        int result = TrainCommand.Profiled(true, () =>
        {
            using (StageProfiler.Measure(TrainingStages.Iteration)) { }
            return 7;
        }, output);
        Assert.That(result, Is.EqualTo(7));
        Assert.That(output.ToString(), Does.StartWith("profile over 1 iterations"));
        Assert.That(StageProfiler.Enabled, Is.False);

        using var failedOutput = new StringWriter();
        Assert.Throws<InvalidOperationException>(() => TrainCommand.Profiled<int>(true, () => throw new InvalidOperationException("failed"), failedOutput));
        Assert.That(StageProfiler.Enabled, Is.False, "a run that throws leaves the profiler off");
        Assert.That(failedOutput.ToString(), Is.Empty);

        Assert.That(TrainCommand.Profiled(false, () => StageProfiler.Enabled, output), Is.False, "without --profile nothing is timed");
    }

    [Test]
    public void TablePutsModelStagesUnderForwardWithPerIterationMillisecondsAndCpuShare()
    {
        // 4 iterations, 800 ms of CPU in all: forward 240 ms (60 per iteration, 30 %), its backbone 160 (40, 20 %),
        // backward 480 (120, 60 %), the optimiser 40 (10, 5 %); wall times are the CPU times doubled.
        var stages = new List<StageProfiler.StageTotal>
        {
            new(TrainingStages.Iteration, 1600, 800, 4),
            new(TrainingStages.Forward, 480, 240, 4),
            new("backbone", 320, 160, 4),
            new(TrainingStages.Backward, 960, 480, 4),
            new(TrainingStages.Optimizer, 80, 40, 4),
        };
        using var output = new StringWriter();
        TrainCommand.PrintProfile(stages, output);
        var rows = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(2)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.That(rows.Select(r => r[0]), Is.EqualTo(new[] { "iteration", "forward", "backbone", "backward", "optimizer" }));
        Assert.That(output.ToString(), Does.Contain("\n  backbone"), "a model stage is indented as part of forward");
        Assert.That(rows.Select(r => r[2]), Is.EqualTo(new[] { "400.0", "120.0", "80.0", "240.0", "20.0" }), "wall ms per iteration");
        Assert.That(rows.Select(r => r[3]), Is.EqualTo(new[] { "200.0", "60.0", "40.0", "120.0", "10.0" }), "CPU ms per iteration");
        Assert.That(rows.Select(r => r[4]), Is.EqualTo(new[] { "100.0", "30.0", "20.0", "60.0", "5.0" }), "share of the iteration's CPU");
    }

    /// <summary>
    /// Two iterations as the trainer times them: forward holding backbone, which holds scan, then backward, left open in the
    /// first iteration as a skipped step leaves it (no optimizer step), closed in the second, then optimizer. Each stage nests
    /// under the stage it ran inside, the open backward ends with its iteration (the second iteration's stages are not
    /// backward's, nor is a stage after the last iteration), and the table indents by depth.
    /// </summary>
    [Test]
    public void StagesNestUnderTheStageTheyRanInsideAndTheTableIndentsByDepth()
    {
        StageProfiler.Start();
        IReadOnlyList<StageProfiler.StageTotal> totals;
        try
        {
            for (int step = 0; step < 2; step++)
                using (StageProfiler.Measure(TrainingStages.Iteration))
                {
                    using (StageProfiler.Measure(TrainingStages.Forward))
                    using (StageProfiler.Measure("backbone"))
                    using (StageProfiler.Measure("scan")) { }
                    var backward = StageProfiler.Measure(TrainingStages.Backward);
                    if (step == 0) continue;
                    backward.Dispose();
                    using (StageProfiler.Measure(TrainingStages.Optimizer)) { }
                }
            using (StageProfiler.Measure("after_training")) { }
        }
        finally
        {
            totals = StageProfiler.Stop();
        }
        var parents = totals.ToDictionary(t => t.Stage, t => t.Parent);
        Assert.That(parents, Is.EqualTo(new Dictionary<string, string?>
        {
            [TrainingStages.Iteration] = null, [TrainingStages.Forward] = TrainingStages.Iteration, ["backbone"] = TrainingStages.Forward,
            ["scan"] = "backbone", [TrainingStages.Backward] = TrainingStages.Iteration, [TrainingStages.Optimizer] = TrainingStages.Iteration,
            ["after_training"] = null,
        }), "a stage after the iterations runs inside none, though the first iteration's backward was never closed");
        Assert.That(totals.Single(t => t.Stage == TrainingStages.Backward).Calls, Is.EqualTo(1), "the open backward is never counted");

        using var output = new StringWriter();
        TrainCommand.PrintProfile(totals.Where(t => t.Stage != "after_training").ToList(), output);
        var names = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(2)
            .Select(line => line[..line.IndexOf(' ', line.TakeWhile(c => c == ' ').Count())]).ToList();
        Assert.That(names, Is.EqualTo(new[] { "iteration", "forward", "  backbone", "    scan", "backward", "optimizer" }));
    }

    [Test]
    public void TableSaysSoWhenNoIterationRan()
    {
        using var output = new StringWriter();
        TrainCommand.PrintProfile([], output);
        Assert.That(output.ToString().Trim(), Is.EqualTo("profile: no iteration ran"));
    }
}
