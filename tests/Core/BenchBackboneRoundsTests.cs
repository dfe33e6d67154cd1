using NUnit.Framework;
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
}
