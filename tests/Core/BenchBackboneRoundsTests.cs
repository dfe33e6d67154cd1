using NUnit.Framework;
using Vim.Core;
using Vim.Core.Diagnostics;
using Vim.Tools.Commands;
using static Vim.Tools.Commands.BenchBackboneCommand;

namespace Vim.Tests.Core;

public class BenchBackboneRoundsTests
{
    private static Measurement Run(string model, string attention, double medianMs, double minMs, double peakMiB, string status = "ok") =>
        new(model, attention, 1248, 1248, 6085, 1, medianMs, minMs, peakMiB, peakMiB + 10, status);

    [Test]
    public void CombinedRunsTakeTheMedianOfMediansAndPeaksAndTheSmallestMinimum()
    {
        var combined = Combine([Run("vim_tiny", "-", 100, 95, 150), Run("vim_tiny", "-", 180, 90, 160), Run("vim_tiny", "-", 120, 110, 152)]);
        Assert.That(combined.MedianMs, Is.EqualTo(120));
        Assert.That(combined.MinMs, Is.EqualTo(90));
        Assert.That(combined.PeakMiB, Is.EqualTo(152));
        Assert.That(combined.AllocatorPeakMiB, Is.EqualTo(162));
        Assert.That(combined.Rounds, Is.EqualTo(3));
        Assert.That(combined.Gflops, Is.NaN, "no run counted FLOPs");
        Assert.That(Combine([Run("vim_tiny", "-", 100, 95, 150) with { Gflops = 1.8 }, Run("vim_tiny", "-", 140, 90, 160) with { Gflops = 1.8 }]).Gflops,
            Is.EqualTo(1.8), "every run of one configuration counts the same FLOPs");
        // An even count averages the middle two.
        Assert.That(Combine([Run("vim_tiny", "-", 100, 95, 150), Run("vim_tiny", "-", 140, 90, 160)]).MedianMs, Is.EqualTo(120));
    }

    [Test]
    public void ACombinationWithAFailedRunReportsTheFailure()
    {
        var combined = Combine([Run("deit_tiny", "explicit", 100, 95, 150), Run("deit_tiny", "explicit", double.NaN, double.NaN, double.NaN, "timeout after 60 s")]);
        Assert.That(combined.Status, Is.EqualTo("timeout after 60 s"));
        Assert.That(combined.Rounds, Is.EqualTo(2));
    }

    [Test]
    public void AFailedMeasurementIsWrittenAsNullsAndReadBackAsNaN()
    {
        // A child that ran out of memory or time (DeiT at high resolution) has no numbers: backbone.json and the
        // child's RESULT line must still be JSON, and read back as the same failure.
        var failed = Run("deit_tiny", "explicit", double.NaN, double.NaN, double.NaN, "timeout after 60 s");
        var ok = Run("vim_tiny", "-", 0.1 + 0.2, 95, 150) with { Gflops = 1.826449152 };
        var json = System.Text.Json.JsonSerializer.Serialize(new[] { failed, ok }, Vim.Core.IO.MetricJson.Indented);
        Assert.That(json, Does.Contain("\"MedianMs\": null").And.Contain("\"PeakMiB\": null"));
        var back = System.Text.Json.JsonSerializer.Deserialize<Measurement[]>(json, Vim.Core.IO.MetricJson.Compact)!;
        Assert.That(back[0].MedianMs, Is.NaN);
        Assert.That(back[0].Status, Is.EqualTo("timeout after 60 s"));
        Assert.That(back[1], Is.EqualTo(ok), "finite numbers round-trip exactly");
    }

    [Test]
    public void SpeedUpsPairRunsOfTheSameRound()
    {
        // Round 2 ran on a slow spell: both sides slowed down together. Pairing by round gives ratios 2, 2.2, 2.1
        // (median 2.1); the ratio of the medians over rounds would be 2400 / 1100 ≈ 2.18.
        var vim1 = Run("vim_tiny", "-", 1000, 990, 150);
        var vim2 = Run("vim_tiny", "-", 1800, 1700, 150);
        var vim3 = Run("vim_tiny", "-", 1100, 1050, 150);
        var sdpa1 = Run("deit_tiny", "sdpa", 2000, 1990, 180);
        var sdpa2 = Run("deit_tiny", "sdpa", 3960, 3900, 180);
        var sdpa3 = Run("deit_tiny", "sdpa", 2310, 2300, 180);
        var runs = new List<(int, Measurement)> { (1, vim1), (1, sdpa1), (2, vim2), (2, sdpa2), (3, vim3), (3, sdpa3) };
        Assert.That(MedianSpeedup(runs, vim1, sdpa1), Is.EqualTo(2.1).Within(1e-12));

        // A round whose baseline failed drops out of the pairing.
        runs[5] = (3, Run("deit_tiny", "sdpa", double.NaN, double.NaN, double.NaN, "exit code 134"));
        Assert.That(MedianSpeedup(runs, vim1, sdpa1), Is.EqualTo(2.1).Within(1e-12));   // median of 2 and 2.2
        Assert.That(MedianSpeedup([(1, vim1)], vim1, sdpa1), Is.NaN);
    }

    [Test]
    public void MedianSharesTakeEachStagesShareOfEveryForward()
    {
        static StageProfiler.StageTotal Stage(string name, double ms) => new(name, ms, ms, 1);
        // The second forward ran in a slow spell of in_proj: its scan share falls to 15%, the ratio of the mean
        // times would be 79 / 400 = 19.75%, the median of the per-forward shares (25%, 15%, 24%) is 24%.
        var forwards = new List<(double TotalMs, IReadOnlyList<StageProfiler.StageTotal> Stages)>
        {
            (100, [Stage("in_proj", 50), Stage("scan", 25)]),
            (200, [Stage("in_proj", 150), Stage("scan", 30)]),
            (100, [Stage("in_proj", 50), Stage("scan", 24), Stage("combine", 6)]),
        };
        var shares = MedianShares(forwards);
        Assert.That(shares["scan"], Is.EqualTo(0.24).Within(1e-12));
        Assert.That(shares["in_proj"], Is.EqualTo(0.5).Within(1e-12));
        // Absent from two forwards: shares 0, 0, 0.06.
        Assert.That(shares["combine"], Is.EqualTo(0.0));
        // Not covered by a stage: 25%, 10%, 20%.
        Assert.That(shares["other"], Is.EqualTo(0.2).Within(1e-12));
    }

    [Test]
    public void CheckpointedTrainingStepsAreTheirOwnMode()
    {
        var checkpointed = BenchMode.Parse("train", withCp: true);
        Assert.That((checkpointed.Name, checkpointed.WithCp, checkpointed.IsTraining), Is.EqualTo(("train", true, true)));
        Assert.That(new[] { checkpointed.CsvFile, checkpointed.JsonFile, checkpointed.LatencyChart, checkpointed.MemoryChart },
            Is.EqualTo(new[] { "backbone_train_cp.csv", "backbone_train_cp.json", "latency_train_cp.png", "memory_train_cp.png" }));
        Assert.That(BenchMode.Parse("train").WithCp, Is.False);
        Assert.That(BenchMode.Parse("train").CsvFile, Is.EqualTo("backbone_train.csv"));
    }

    [Test]
    public void InProjRecomputingTrainingStepsAreTheirOwnMode()
    {
        var replay = BenchMode.Parse("train", recomputeInProj: true);
        Assert.That((replay.WithCp, replay.RecomputeInProj, replay.CsvFile, replay.MemoryChart),
            Is.EqualTo((false, true, "backbone_train_rip.csv", "memory_train_rip.png")));
        var both = BenchMode.Parse("train", withCp: true, recomputeInProj: true);
        Assert.That((both.WithCp, both.RecomputeInProj, both.JsonFile), Is.EqualTo((true, true, "backbone_train_cp_rip.json")));
        Assert.That(BenchMode.Parse("train").RecomputeInProj, Is.False);
        var e = Assert.Throws<VimException>(() => BenchMode.Parse("infer", recomputeInProj: true))!;
        Assert.That(e.Message, Does.StartWith("--recompute-in-proj").And.Contain("--mode train"));
    }
}
