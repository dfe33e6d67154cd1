using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class MatcherTests
{
    // 2 ground truths × 5 predictions. Best per prediction: 0.9 (gt0), 0.6 (gt1), 0.25 (gt1), 0.3 (gt1), 0.2 (gt0).
    private static Tensor Quality() => tensor(new[]
    {
        0.9f, 0.5f, 0.10f, 0.0f, 0.20f,
        0.1f, 0.6f, 0.25f, 0.3f, 0.15f,
    }).view(2, 5);

    private static sbyte[] Labels(MatchResult r) => r.Labels.data<sbyte>().ToArray();

    [Test]
    public void BandsGiveNegativeIgnoreAndPositive()
    {
        using var scope = NewDisposeScope();
        var r = new Matcher(new[] { 0.3, 0.7 }, new[] { 0, -1, 1 }, allowLowQualityMatches: false).Match(Quality());
        Assert.That(r.Matches.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 1, 1, 0 }));
        // 0.3 sits on the lower edge of the ignore band ([0.3, 0.7) → −1).
        Assert.That(Labels(r), Is.EqualTo(new sbyte[] { 1, -1, 0, -1, 0 }));
    }

    [Test]
    public void LowQualityMatchesPromoteEachGroundTruthsBestPredictionIncludingTies()
    {
        using var scope = NewDisposeScope();
        var matcher = new Matcher(new[] { 0.3, 0.7 }, new[] { 0, -1, 1 }, allowLowQualityMatches: true);
        Assert.That(Labels(matcher.Match(Quality())), Is.EqualTo(new sbyte[] { 1, 1, 0, -1, 0 }));
        // gt1's best quality 0.4 is reached by two predictions: both become positive.
        var tie = tensor(new[] { 0.8f, 0.1f, 0.1f, 0.0f, 0.4f, 0.4f }).view(2, 3);
        var r = matcher.Match(tie);
        Assert.That(Labels(r), Is.EqualTo(new sbyte[] { 1, 1, 1 }));
        Assert.That(r.Matches.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 1 }));
    }

    [Test]
    public void ExactPositiveThresholdIsPositiveAndTwoLabelMatcherWorks()
    {
        using var scope = NewDisposeScope();
        var roi = new Matcher(new[] { 0.5 }, new[] { 0, 1 }, allowLowQualityMatches: false);
        var r = roi.Match(tensor(new[] { 0.5f, 0.4999f, 0.7f }).view(1, 3));
        Assert.That(Labels(r), Is.EqualTo(new sbyte[] { 1, 0, 1 }));
    }

    [Test]
    public void EmptyQualityMatrixLabelsEverythingWithTheLowestBand()
    {
        using var scope = NewDisposeScope();
        var matcher = new Matcher(new[] { 0.3, 0.7 }, new[] { 0, -1, 1 }, allowLowQualityMatches: true);
        var r = matcher.Match(zeros(0, 4));
        Assert.That(Labels(r), Is.EqualTo(new sbyte[] { 0, 0, 0, 0 }));
        Assert.That(r.Matches.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 0, 0, 0 }));
        Assert.That(matcher.Match(zeros(3, 0)).Labels.shape, Is.EqualTo(new long[] { 0 }));
    }

    [Test]
    public void InvalidConfigurationIsRejected()
    {
        Assert.Throws<ArgumentException>(() => _ = new Matcher(new[] { 0.7, 0.3 }, new[] { 0, -1, 1 }, false));
        Assert.Throws<ArgumentException>(() => _ = new Matcher(new[] { 0.3 }, new[] { 0, -1, 1 }, false));
        Assert.Throws<ArgumentException>(() => _ = new Matcher(new[] { 0.3 }, new[] { 0, 2 }, false));
    }
}
