using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class SamplerTests
{
    private static Tensor MakeLabels(int positives, int negatives, int ignored, long positiveLabel, long background)
    {
        var values = Enumerable.Repeat(positiveLabel, positives)
            .Concat(Enumerable.Repeat(background, negatives))
            .Concat(Enumerable.Repeat(-1L, ignored)).ToArray();
        // Interleave deterministically so indices are not simply sorted by kind.
        var order = Enumerable.Range(0, values.Length).OrderBy(i => (i * 7919) % values.Length).ToArray();
        return tensor(order.Select(i => values[i]).ToArray());
    }

    [TestCase(10, 300, 5, 10, 246)]   // few positives: negatives fill the batch
    [TestCase(200, 300, 0, 128, 128)] // both plentiful: exact fraction
    [TestCase(200, 20, 7, 128, 20)]   // few negatives: the batch is not filled
    [TestCase(0, 0, 9, 0, 0)]
    public void CountsFollowTheBatchSizeAndFraction(int pos, int neg, int ign, int expectPos, int expectNeg)
    {
        using var scope = NewDisposeScope();
        var labels = MakeLabels(pos, neg, ign, 1, 0);
        var sampler = new BalancedPositiveNegativeSampler(256, 0.5);
        var (p, n) = sampler.Sample(labels, backgroundLabel: 0, new Generator(1));
        Assert.That(p.shape[0], Is.EqualTo(expectPos));
        Assert.That(n.shape[0], Is.EqualTo(expectNeg));
        Assert.That(labels[p].eq(1).all().item<bool>(), Is.True);
        Assert.That(labels[n].eq(0).all().item<bool>(), Is.True);
        Assert.That(p.unique().Item1.shape[0], Is.EqualTo(expectPos), "positives are distinct");
        Assert.That(n.unique().Item1.shape[0], Is.EqualTo(expectNeg), "negatives are distinct");
    }

    [Test]
    public void ClassLabelsWithBackgroundIndexAreSampledAsInRoiHeads()
    {
        using var scope = NewDisposeScope();
        // 80 classes: background is 80, every class index below it is a positive.
        var labels = tensor(new long[] { 3, 80, 0, 79, 80, -1, 80, 12 });
        var (p, n) = new BalancedPositiveNegativeSampler(4, 0.25).Sample(labels, 80, new Generator(5));
        Assert.That(p.shape[0], Is.EqualTo(1));
        Assert.That(n.shape[0], Is.EqualTo(3));
        Assert.That(new long[] { 0, 2, 3, 7 }, Does.Contain(p.item<long>()));
        Assert.That(n.sort().Values.data<long>().ToArray(), Is.EqualTo(new long[] { 1, 4, 6 }));
    }

    [Test]
    public void SameSeedSameSampleDifferentSeedDifferentSample()
    {
        using var scope = NewDisposeScope();
        var labels = MakeLabels(500, 2000, 10, 1, 0);
        var sampler = new BalancedPositiveNegativeSampler(256, 0.25);
        var a = sampler.Sample(labels, 0, new Generator(42));
        var b = sampler.Sample(labels, 0, new Generator(42));
        var c = sampler.Sample(labels, 0, new Generator(43));
        Assert.That(a.Positive.data<long>().ToArray(), Is.EqualTo(b.Positive.data<long>().ToArray()));
        Assert.That(a.Negative.data<long>().ToArray(), Is.EqualTo(b.Negative.data<long>().ToArray()));
        Assert.That(a.Positive.data<long>().ToArray(), Is.Not.EqualTo(c.Positive.data<long>().ToArray()));
        Assert.That(a.Positive.shape[0], Is.EqualTo(64));
        Assert.That(a.Negative.shape[0], Is.EqualTo(192));
    }
}
