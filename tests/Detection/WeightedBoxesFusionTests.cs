using NUnit.Framework;
using Vim.Detection;
using Box = Vim.Detection.WeightedBoxesFusion.Box;

namespace Vim.Tests.Detection;

/// <summary>
/// Weighted Boxes Fusion on hand-computed cases: every expected box and score below is worked out in the comments from
/// mmdet's rule (weighted score = score × model weight; box = Σ ws·box / Σ ws; the conf_type rescalings), not read off
/// the code.
/// </summary>
public class WeightedBoxesFusionTests
{
    private const long Cat = 1;

    private static List<Box> Fuse(WeightedBoxesFusionSettings settings, params Box[][] models) => WeightedBoxesFusion.Fuse(models, settings);

    private static void AssertBox(Box actual, double x, double y, double w, double h, double score, long label = Cat)
    {
        Assert.That(actual.Label, Is.EqualTo(label));
        Assert.That(new[] { actual.X, actual.Y, actual.Width, actual.Height }, Is.EqualTo(new[] { x, y, w, h }).Within(1e-12), "box [x, y, w, h]");
        Assert.That(actual.Score, Is.EqualTo(score).Within(1e-12), "score");
    }

    /// <summary>
    /// Weights 2, 1. Model 0: A = [0, 0, 10, 10] at 0.9, model 1: B = [1, 1, 10, 10] at 0.6; IoU 81 / 119 = 0.68 > 0.55.
    /// Weighted scores 1.8 and 0.6: x = y = (1.8·0 + 0.6·1) / 2.4 = 0.25, w = h = 10. Scores (n = 2, Σw = 3, both models
    /// present): avg 1.2 · min(2, 2) / 3 = 0.8; max 1.8 / 2 = 0.9; box_and_model_avg 1.2 · 2 / 3 · 3 / 3 = 0.8;
    /// absent_model_aware_avg 1.2 · 2 / (3 + 0) = 0.8.
    /// </summary>
    [TestCase("avg", 0.8)]
    [TestCase("max", 0.9)]
    [TestCase("box_and_model_avg", 0.8)]
    [TestCase("absent_model_aware_avg", 0.8)]
    public void TwoModelsOverlappingBoxesFuseToTheScoreWeightedAverage(string confType, double score)
    {
        var settings = new WeightedBoxesFusionSettings { Weights = [2, 1], Confidence = WeightedBoxesFusionSettings.ParseConfidence(confType) };
        var fused = Fuse(settings, [new Box(Cat, 0.9, 0, 0, 10, 10)], [new Box(Cat, 0.6, 1, 1, 10, 10)]);
        Assert.That(fused, Has.Count.EqualTo(1));
        AssertBox(fused[0], 0.25, 0.25, 10, 10, score);
    }

    /// <summary>
    /// Equal weights: the same two boxes average with the scores alone, x = y = (0.9·0 + 0.6·1) / 1.5 = 0.4, and avg's
    /// score is (0.9 + 0.6) / 2 · 2 / 2 = 0.75.
    /// </summary>
    [Test]
    public void WeightsChangeTheAverage()
    {
        var fused = Fuse(new WeightedBoxesFusionSettings(), [new Box(Cat, 0.9, 0, 0, 10, 10)], [new Box(Cat, 0.6, 1, 1, 10, 10)]);
        AssertBox(fused.Single(), 0.4, 0.4, 10, 10, 0.75);
    }

    /// <summary>
    /// The conf_types part where a cluster lacks a model. Weights 2, 1. Model 0 has A = [0, 0, 10, 10] at 0.9 and
    /// A' = [1, 1, 10, 10] at 0.5 (IoU 0.68: one cluster, n = 2, weighted scores 1.8 and 1.0, cluster weight 4, model 1
    /// absent); model 1 has C = [50, 50, 10, 10] at 0.6 far away (a cluster of its own, weighted 0.6, weight 1).
    /// Cluster A: x = y = 1.0 / 2.8. avg 1.4 · min(2, 2) / 3 = 14/15; max 1.8 / 2 = 0.9; box_and_model_avg
    /// 1.4 · 2 / 4 · 2 / 3 = 7/15; absent_model_aware_avg 1.4 · 2 / (4 + 1) = 0.56.
    /// Cluster C: avg 0.6 · min(2, 1) / 3 = 0.2; max 0.6 / 2 = 0.3; box_and_model_avg 0.6 · 1 / 1 · 1 / 3 = 0.2;
    /// absent_model_aware_avg 0.6 · 1 / (1 + 2) = 0.2.
    /// </summary>
    [TestCase("avg", 14.0 / 15, 0.2)]
    [TestCase("max", 0.9, 0.3)]
    [TestCase("box_and_model_avg", 7.0 / 15, 0.2)]
    [TestCase("absent_model_aware_avg", 0.56, 0.2)]
    public void EachConfTypeRescalesAClusterMissingAModel(string confType, double clusterScore, double singleScore)
    {
        var settings = new WeightedBoxesFusionSettings { Weights = [2, 1], Confidence = WeightedBoxesFusionSettings.ParseConfidence(confType) };
        var fused = Fuse(settings, [new Box(Cat, 0.9, 0, 0, 10, 10), new Box(Cat, 0.5, 1, 1, 10, 10)], [new Box(Cat, 0.6, 50, 50, 10, 10)]);
        Assert.That(fused, Has.Count.EqualTo(2));
        var cluster = fused.Single(b => b.X < 50);
        var single = fused.Single(b => b.X >= 50);
        AssertBox(cluster, 1.0 / 2.8, 1.0 / 2.8, 10, 10, clusterScore);
        AssertBox(single, 50, 50, 10, 10, singleScore);
        Assert.That(fused.Select(b => b.Score), Is.Ordered.Descending, "highest score first");
    }

    /// <summary>
    /// Three boxes from two models (weights 1, 1) in one cluster: model 0 at 0.9 [0, 0, 10, 10] and 0.8 [0.5, 0, 10, 10],
    /// model 1 at 0.7 [1, 0, 10, 10]. Mean 2.4 / 3 = 0.8; without overflow × min(2, 3) / 2 = 0.8, with it × 3 / 2 = 1.2.
    /// x = (0.8·0.5 + 0.7·1) / 2.4 = 1.1 / 2.4.
    /// </summary>
    [TestCase(false, 0.8)]
    [TestCase(true, 1.2)]
    public void AllowsOverflowRescalesByTheClusterSize(bool allowsOverflow, double score)
    {
        var settings = new WeightedBoxesFusionSettings { AllowsOverflow = allowsOverflow };
        var fused = Fuse(settings, [new Box(Cat, 0.9, 0, 0, 10, 10), new Box(Cat, 0.8, 0.5, 0, 10, 10)], [new Box(Cat, 0.7, 1, 0, 10, 10)]);
        AssertBox(fused.Single(), 1.1 / 2.4, 0, 10, 10, score);
    }

    /// <summary>
    /// --skip-box-thr 0.5 leaves out model 1's 0.4 box (strictly below), so model 0's box stands alone: avg
    /// 0.9 · min(2, 1) / 2 = 0.45, its own coordinates. At exactly 0.5 it is kept and fuses: (0.9 + 0.5) / 2 · 2 / 2 = 0.7.
    /// </summary>
    [Test]
    public void BoxesScoringBelowTheSkipThresholdAreLeftOut()
    {
        var settings = new WeightedBoxesFusionSettings { SkipBoxThreshold = 0.5 };
        var below = Fuse(settings, [new Box(Cat, 0.9, 0, 0, 10, 10)], [new Box(Cat, 0.4, 2, 0, 10, 10)]);
        AssertBox(below.Single(), 0, 0, 10, 10, 0.45);
        var at = Fuse(settings, [new Box(Cat, 0.9, 0, 0, 10, 10)], [new Box(Cat, 0.5, 2, 0, 10, 10)]);
        // x = 0.5·2 / 1.4.
        AssertBox(at.Single(), 1.0 / 1.4, 0, 10, 10, 0.7);
    }

    /// <summary>Identical boxes of two categories stay apart: each a cluster of one, avg 0.9 · 1 / 2 and 0.8 · 1 / 2.</summary>
    [Test]
    public void DifferentLabelsNeverFuse()
    {
        var fused = Fuse(new WeightedBoxesFusionSettings(), [new Box(1, 0.9, 0, 0, 10, 10)], [new Box(2, 0.8, 0, 0, 10, 10)]);
        Assert.That(fused, Has.Count.EqualTo(2));
        AssertBox(fused[0], 0, 0, 10, 10, 0.45, label: 1);
        AssertBox(fused[1], 0, 0, 10, 10, 0.4, label: 2);
    }

    /// <summary>[0, 0, 10, 10] and [0, 0, 10, 5] overlap at IoU 50 / 100 = 0.5 exactly: not above 0.5, so apart; above 0.49, so fused.</summary>
    [Test]
    public void AnIouEqualToTheThresholdDoesNotFuse()
    {
        Box[] a = [new Box(Cat, 0.9, 0, 0, 10, 10)], b = [new Box(Cat, 0.9, 0, 0, 10, 5)];
        Assert.That(Fuse(new WeightedBoxesFusionSettings { IouThreshold = 0.5 }, a, b), Has.Count.EqualTo(2));
        // h = (0.9·10 + 0.9·5) / 1.8 = 7.5; score (0.9 + 0.9) / 2 · 2 / 2.
        AssertBox(Fuse(new WeightedBoxesFusionSettings { IouThreshold = 0.49 }, a, b).Single(), 0, 0, 10, 7.5, 0.9);
    }

    /// <summary>
    /// Three models, weights 1, --iou-thr 0.4: A = [0, 0, 10, 10] at 0.9; B = [3, 0, 10, 10] at 0.8 overlaps A at
    /// 70 / 130 = 0.54 and joins, moving the fused box to x = 2.4 / 1.7 = 1.41; C = [5, 0, 10, 10] at 0.7 overlaps A only
    /// at 50 / 150 = 0.33 but the fused box at 64.1 / 135.9 = 0.47, so it joins too: matching is against the fused box.
    /// x = (2.4 + 3.5) / 2.4; score 2.4 / 3 · 3 / 3 = 0.8.
    /// </summary>
    [Test]
    public void LaterBoxesAreMatchedAgainstTheFusedBoxNotTheFirst()
    {
        var settings = new WeightedBoxesFusionSettings { IouThreshold = 0.4 };
        var fused = Fuse(settings, [new Box(Cat, 0.9, 0, 0, 10, 10)], [new Box(Cat, 0.8, 3, 0, 10, 10)], [new Box(Cat, 0.7, 5, 0, 10, 10)]);
        AssertBox(fused.Single(), 5.9 / 2.4, 0, 10, 10, 0.8);
    }

    /// <summary>
    /// One model (so it fuses its own overlapping boxes), --iou-thr 0.3: A = [0, 0, 10, 10] at 0.9 and D = [8, 0, 10, 10]
    /// at 0.85 overlap at 20 / 180 and stay apart; E = [5, 0, 10, 10] at 0.5 overlaps A at 0.33 and D at 70 / 130 = 0.54,
    /// both above 0.3, and joins D, the larger: x = (0.85·8 + 0.5·5) / 1.35, score 1.35 / 2 · min(1, 2) / 1; A keeps 0.9.
    /// </summary>
    [Test]
    public void ABoxJoinsTheFusedBoxItOverlapsMost()
    {
        var fused = Fuse(new WeightedBoxesFusionSettings { IouThreshold = 0.3 },
            [new Box(Cat, 0.9, 0, 0, 10, 10), new Box(Cat, 0.5, 5, 0, 10, 10), new Box(Cat, 0.85, 8, 0, 10, 10)]);
        Assert.That(fused, Has.Count.EqualTo(2));
        AssertBox(fused[0], 0, 0, 10, 10, 0.9);
        AssertBox(fused[1], 9.3 / 1.35, 0, 10, 10, 0.675);
    }

    /// <summary>A box with a negative width and height is the same box turned around (mmdet swaps reversed corners); one of zero area is left out.</summary>
    [Test]
    public void ReversedBoxesAreTurnedAroundAndEmptyOnesLeftOut()
    {
        var fused = Fuse(new WeightedBoxesFusionSettings(), [new Box(Cat, 0.8, 10, 10, -10, -10), new Box(Cat, 0.9, 30, 30, 0, 10)], [new Box(Cat, 0.8, 0, 0, 10, 10)]);
        // Both [0, 0, 10, 10] at 0.8: one cluster, score 0.8 · 2 / 2.
        AssertBox(fused.Single(), 0, 0, 10, 10, 0.8);
    }

    /// <summary>Boxes scoring 0 kept by --skip-box-thr 0 have no score-weighted mean (mmdet divides 0 by 0): the plain mean, score 0.</summary>
    [Test]
    public void AClusterOfZeroScoresIsThePlainMean()
    {
        var fused = Fuse(new WeightedBoxesFusionSettings(), [new Box(Cat, 0, 0, 0, 10, 10)], [new Box(Cat, 0, 1, 0, 10, 10)]);
        AssertBox(fused.Single(), 0.5, 0, 10, 10, 0);
    }

    [Test]
    public void SettingsTheRuleCannotUseAreRefusedByOption()
    {
        Assert.That(() => new WeightedBoxesFusionSettings { Weights = [1, 2, 3] }.Validate(2),
            Throws.TypeOf<Vim.Core.VimException>().With.Message.Contains("--weights: 3 weight(s) for 2 --results file(s)"));
        Assert.That(() => new WeightedBoxesFusionSettings { Weights = [1, -1] }.Validate(2),
            Throws.TypeOf<Vim.Core.VimException>().With.Message.Contains("--weights: weight 2 is -1; expected a positive number"));
        Assert.That(() => new WeightedBoxesFusionSettings { IouThreshold = 1.5 }.Validate(2),
            Throws.TypeOf<Vim.Core.VimException>().With.Message.Contains("--iou-thr: expected an IoU in [0, 1], got 1.5"));
        Assert.That(() => new WeightedBoxesFusionSettings { SkipBoxThreshold = -0.1 }.Validate(2),
            Throws.TypeOf<Vim.Core.VimException>().With.Message.Contains("--skip-box-thr: expected a score in [0, 1], got -0.1"));
        Assert.That(() => WeightedBoxesFusionSettings.ParseConfidence("mean"),
            Throws.TypeOf<Vim.Core.VimException>().With.Message.Contains("--conf-type: expected one of avg, max, box_and_model_avg, absent_model_aware_avg, got 'mean'"));
        Assert.That(() => new WeightedBoxesFusionSettings().Validate(0),
            Throws.TypeOf<Vim.Core.VimException>().With.Message.Contains("--results: expected at least one"));
    }
}
