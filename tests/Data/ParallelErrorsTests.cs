using NUnit.Framework;
using Vim.Core;
using Vim.Data;

namespace Vim.Tests.Data;

/// <summary>
/// <see cref="ParallelErrors.For"/>: a loop over entries of which several are bad names the first bad one, on every run,
/// as a loop in order would; it runs each index once otherwise, and a non-user failure stays an AggregateException.
/// </summary>
public class ParallelErrorsTests
{
    private static bool IsBad(int i) => i >= 300 && i % 37 == 5;

    [Test]
    public void OfSeveralUserErrorsTheLowestIndexIsThrownOnEveryRun()
    {
        int expected = Enumerable.Range(0, 4000).First(IsBad);   // 301
        for (int run = 0; run < 25; run++)
        {
            var e = Assert.Throws<VimException>(() => ParallelErrors.For(4000, i =>
            {
                // Some work per item, so the threads' ranges interleave in time.
                Thread.SpinWait(2000);
                if (IsBad(i)) throw new VimException($"entry {i} is bad");
            }));
            Assert.That(e!.Message, Is.EqualTo($"entry {expected} is bad"), $"run {run}");
        }
    }

    [Test]
    public void WithoutErrorsEveryIndexRunsOnce()
    {
        var visits = new int[1000];
        ParallelErrors.For(visits.Length, i => Interlocked.Increment(ref visits[i]));
        Assert.That(visits, Is.All.EqualTo(1));
    }

    [Test]
    public void AFailureThatIsNotAUserErrorStaysAnAggregateException()
    {
        var e = Assert.Throws<AggregateException>(() => ParallelErrors.For(100, i =>
        {
            if (i == 42) throw new InvalidOperationException("a bug");
        }));
        Assert.That(e!.InnerExceptions.Single(), Is.TypeOf<InvalidOperationException>());
    }
}
