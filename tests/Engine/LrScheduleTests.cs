using NUnit.Framework;
using Vim.Core.Config;
using Vim.Core.Engine;

namespace Vim.Tests.Engine;

public class LrScheduleTests
{
    [Test]
    public void PolyWithLinearWarmupMatchesHandComputedValues()
    {
        var schedule = new LrSchedule(new ScheduleConfig
        {
            MaxIters = 100, Policy = LrPolicy.Poly, Power = 1.0, MinLr = 0, WarmupIters = 10, WarmupRatio = 0.1,
        });
        // iter 0: poly 1e-4·(1 − 0) = 1e-4, warmup factor 0.1 → 1e-5.
        Assert.That(schedule.LrAt(1e-4, 0), Is.EqualTo(1e-5).Within(1e-18));
        // iter 5: poly 1e-4·0.95 = 9.5e-5, factor 0.1 + 0.9·0.5 = 0.55 → 5.225e-5.
        Assert.That(schedule.LrAt(1e-4, 5), Is.EqualTo(5.225e-5).Within(1e-18));
        // iter 50: past warmup, poly 1e-4·0.5.
        Assert.That(schedule.LrAt(1e-4, 50), Is.EqualTo(5e-5).Within(1e-18));
        Assert.That(schedule.LrAt(1e-4, 100), Is.EqualTo(0.0).Within(1e-18));
    }

    [Test]
    public void PolyPowerAndMinLr()
    {
        var schedule = new LrSchedule(new ScheduleConfig { MaxIters = 10, Policy = LrPolicy.Poly, Power = 2, MinLr = 1e-6, WarmupIters = 0 });
        // (1e-4 − 1e-6)·(1 − 0.3)² + 1e-6 = 9.9e-5·0.49 + 1e-6 = 4.951e-5.
        Assert.That(schedule.LrAt(1e-4, 3), Is.EqualTo(4.951e-5).Within(1e-15));
    }

    [Test]
    public void CosineIsHalfwayAtHalfTime()
    {
        var schedule = new LrSchedule(new ScheduleConfig { MaxIters = 200, Policy = LrPolicy.Cosine, MinLr = 1e-5, WarmupIters = 0 });
        Assert.That(schedule.LrAt(1e-3, 0), Is.EqualTo(1e-3).Within(1e-15));
        Assert.That(schedule.LrAt(1e-3, 100), Is.EqualTo((1e-3 + 1e-5) / 2).Within(1e-15));
        Assert.That(schedule.LrAt(1e-3, 200), Is.EqualTo(1e-5).Within(1e-15));
    }

    [Test]
    public void MultistepDropsByGammaAtEachMilestone()
    {
        var schedule = new LrSchedule(new ScheduleConfig
        {
            MaxIters = 10, Policy = LrPolicy.Multistep, Milestones = [3, 6], Gamma = 0.1, WarmupIters = 2, WarmupRatio = 0.001,
        });
        Assert.That(schedule.LrAt(1.0, 0), Is.EqualTo(0.001).Within(1e-12));
        Assert.That(schedule.LrAt(1.0, 1), Is.EqualTo(0.001 + 0.999 * 0.5).Within(1e-12));
        Assert.That(schedule.LrAt(1.0, 2), Is.EqualTo(1.0).Within(1e-12));
        Assert.That(schedule.LrAt(1.0, 3), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(schedule.LrAt(1.0, 5), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(schedule.LrAt(1.0, 6), Is.EqualTo(0.01).Within(1e-12));
    }
}
