using NUnit.Framework;
using TorchSharp;
using Vim.Core.Config;
using Vim.Detection.Modeling;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>Soft-NMS (mmcv's soft_nms rule) and its place as the detector's final per-class NMS.</summary>
public class SoftNmsTests
{
    /// <summary>
    /// One class, four boxes: A = [0,0,10,10] 0.9, B = [0,0,10,5] 0.8, C = [5,0,15,10] 0.7, D = [20,20,30,30] 0.1.
    /// IoU(A,B) = 50/100 = 0.5, IoU(A,C) = 50/150 = 1/3, IoU(C,B) = 25/(100 + 50 − 25) = 0.2, D overlaps none.
    /// </summary>
    private static (Tensor Boxes, Tensor Scores) FourBoxes() =>
        (tensor(new[] { 0f, 0, 10, 10, 0, 0, 10, 5, 5, 0, 15, 10, 20, 20, 30, 30 }).view(4, 4), tensor(new[] { 0.9f, 0.8f, 0.7f, 0.1f }));

    private static SoftNmsSettings Linear(double minScore = 1e-3) => new(SoftNmsMethod.Linear, 0.5, minScore);

    [Test]
    public void LinearDecaysFromTheThresholdOnAsComputedByHand()
    {
        using var scope = NewDisposeScope();
        var (boxes, scores) = FourBoxes();
        // Threshold 0.3. Pick A (0.9): B has IoU 0.5 ≥ 0.3 → 0.8 · (1 − 0.5) = 0.4; C has IoU 1/3 ≥ 0.3 → 0.7 · 2/3 = 0.46667;
        // D (IoU 0) stays 0.1. Pick C (0.46667): B's IoU with C is 0.2 < 0.3 → stays 0.4. Then B (0.4), then D (0.1).
        var (keep, decayed) = SoftNms.Apply(boxes, scores, 0.3, Linear());
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2, 1, 3 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f, 0.7f * 2 / 3, 0.4f, 0.1f }).Within(1e-6f));
        // Threshold 0.4: C's 1/3 is below it, so only B decays (0.4) and C keeps 0.7; C's 0.2 with B decays nothing.
        (keep, decayed) = SoftNms.Apply(boxes, scores, 0.4, Linear());
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2, 1, 3 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f, 0.7f, 0.4f, 0.1f }).Within(1e-6f));
        // mmcv compares IoU ≥ threshold: at exactly 0.5 (IoU(A,B) = 50/100 in float) B decays to 0.4.
        (keep, decayed) = SoftNms.Apply(boxes, scores, 0.5, Linear());
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2, 1, 3 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f, 0.7f, 0.4f, 0.1f }).Within(1e-6f));
    }

    [Test]
    public void GaussianDecaysEveryOverlapWhateverTheThresholdAsComputedByHand()
    {
        using var scope = NewDisposeScope();
        var (boxes, scores) = FourBoxes();
        // σ = 0.5. Pick A: B → 0.8 · exp(−0.25/0.5) = 0.8 · 0.606531 = 0.485225; C → 0.7 · exp(−(1/9)/0.5) = 0.7 · 0.800737
        // = 0.560516; D → 0.1 · exp(0). Pick C (0.560516): B → 0.485225 · exp(−0.04/0.5) = 0.485225 · 0.923116 = 0.447919.
        var expected = new[] { 0.9f, 0.5605162f, 0.4479187f, 0.1f };
        foreach (var threshold in new[] { 0.0, 0.3, 0.9 })
        {
            var (keep, decayed) = SoftNms.Apply(boxes, scores, threshold, new SoftNmsSettings(SoftNmsMethod.Gaussian, 0.5, 1e-3));
            Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2, 1, 3 }), $"threshold {threshold}");
            Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(expected).Within(1e-6f), $"threshold {threshold}");
        }
    }

    [Test]
    public void BoxesBelowTheMinimumScoreAreDroppedButNeverTheFirstPick()
    {
        using var scope = NewDisposeScope();
        var (boxes, scores) = FourBoxes();
        // min_score 0.45 at threshold 0.3: after A, B's 0.4 and D's undecayed 0.1 are below it (mmcv checks every remaining
        // box after each pick, decayed or not); C's 0.46667 survives, and nothing is left for it to decay.
        var (keep, decayed) = SoftNms.Apply(boxes, scores, 0.3, Linear(minScore: 0.45));
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f, 0.7f * 2 / 3 }).Within(1e-6f));
        // The kernel compares only the boxes after the pick: the first pick stays even below the minimum.
        (keep, decayed) = SoftNms.Apply(boxes, scores, 0.3, Linear(minScore: 0.95));
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f }));
        // An identical box decays to 0.8 · (1 − 1) = 0, below any positive minimum; with minimum 0 it stays, at 0.
        var twins = tensor(new[] { 0f, 0, 10, 10, 0, 0, 10, 10 }).view(2, 4);
        Assert.That(SoftNms.Apply(twins, tensor(new[] { 0.9f, 0.8f }), 0.5, Linear()).Keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0 }));
        (keep, decayed) = SoftNms.Apply(twins, tensor(new[] { 0.9f, 0.8f }), 0.5, Linear(minScore: 0));
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f, 0f }));
    }

    /// <summary>
    /// Equal scores go to the box in the earlier working slot of mmcv's kernel, which swaps each pick into place: with
    /// scores (0.5, 0.5, 0.9) and no overlaps, picking box 2 moves box 0 into its slot, so box 1 comes before box 0.
    /// </summary>
    [Test]
    public void TiesFollowTheKernelsWorkingSlots()
    {
        using var scope = NewDisposeScope();
        var apart = tensor(new[] { 0f, 0, 10, 10, 20, 0, 30, 10, 40, 0, 50, 10 }).view(3, 4);
        var (keep, _) = SoftNms.Apply(apart, tensor(new[] { 0.5f, 0.5f, 0.9f }), 0.5, Linear());
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 2, 1, 0 }));
        // Batched orders its result by score, equal scores by index, as the detector's hard NMS does.
        (keep, _) = SoftNms.Batched(apart, tensor(new[] { 0.5f, 0.5f, 0.9f }), tensor(new long[] { 0, 0, 0 }), 0.5, Linear());
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 2, 0, 1 }));
    }

    [Test]
    public void BatchedDecaysOnlyWithinACategory()
    {
        using var scope = NewDisposeScope();
        var (boxes, scores) = FourBoxes();
        // A, B in category 0; C, D in category 1. At threshold 0.3 A decays B to 0.4 and C's overlap with A counts for
        // nothing: C keeps 0.7. Result by decreasing score: A 0.9, C 0.7, B 0.4, D 0.1.
        var (keep, decayed) = SoftNms.Batched(boxes, scores, tensor(new long[] { 0, 0, 1, 1 }), 0.3, Linear());
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2, 1, 3 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f, 0.7f, 0.4f, 0.1f }).Within(1e-6f));
        // Four categories: nothing decays, whatever the method.
        (keep, decayed) = SoftNms.Batched(boxes, scores, tensor(new long[] { 3, 2, 1, 0 }), 0.0, new SoftNmsSettings(SoftNmsMethod.Gaussian, 0.5, 1e-3));
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 2, 3 }));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(new[] { 0.9f, 0.8f, 0.7f, 0.1f }));
        Assert.That(SoftNms.Batched(zeros(0, 4), zeros(0), zeros(0, ScalarType.Int64), 0.5, Linear()).Keep.shape, Is.EqualTo(new long[] { 0 }));
    }

    /// <summary>
    /// Soft-NMS as the paper states it, in doubles over a list: take the remaining box of highest score, multiply every other
    /// remaining score by its decay, drop those below the minimum.
    /// </summary>
    private static List<(long Index, double Score)> NaiveSoftNms(float[] boxes, float[] scores, long[] categories, double threshold, SoftNmsSettings settings)
    {
        var result = new List<(long, double)>();
        foreach (var category in categories.Distinct())
        {
            var remaining = Enumerable.Range(0, scores.Length).Where(i => categories[i] == category).Select(i => (Index: i, Score: (double)scores[i])).ToList();
            while (remaining.Count > 0)
            {
                var best = remaining.OrderByDescending(r => r.Score).First();
                result.Add((best.Index, best.Score));
                remaining.Remove(best);
                remaining = remaining.Select(r =>
                {
                    double iou = BoxIou(boxes, best.Index, r.Index);
                    double weight = settings.Method == SoftNmsMethod.Linear ? (iou >= threshold ? 1 - iou : 1) : Math.Exp(-iou * iou / settings.Sigma);
                    return (r.Index, Score: r.Score * weight);
                }).Where(r => r.Score >= settings.MinScore).ToList();
            }
        }
        return result.OrderByDescending(r => r.Item2).ToList();
    }

    private static double BoxIou(float[] b, int i, int j)
    {
        double w = Math.Max(0, Math.Min(b[i * 4 + 2], b[j * 4 + 2]) - (double)Math.Max(b[i * 4], b[j * 4]));
        double h = Math.Max(0, Math.Min(b[i * 4 + 3], b[j * 4 + 3]) - (double)Math.Max(b[i * 4 + 1], b[j * 4 + 1]));
        double areaI = ((double)b[i * 4 + 2] - b[i * 4]) * ((double)b[i * 4 + 3] - b[i * 4 + 1]);
        double areaJ = ((double)b[j * 4 + 2] - b[j * 4]) * ((double)b[j * 4 + 3] - b[j * 4 + 1]);
        return w * h / (areaI + areaJ - w * h);
    }

    [TestCase(SoftNmsMethod.Linear, 0.3, 0.5, 0.05, 21)]
    [TestCase(SoftNmsMethod.Linear, 0.5, 0.5, 1e-3, 22)]
    [TestCase(SoftNmsMethod.Gaussian, 0.5, 0.5, 1e-3, 23)]
    [TestCase(SoftNmsMethod.Gaussian, 0.5, 0.1, 0.02, 24)]
    public void BatchedMatchesTheNaiveReferenceOnRandomBoxes(SoftNmsMethod method, double threshold, double sigma, double minScore, int seed)
    {
        using var scope = NewDisposeScope();
        const int n = 300;
        var (b, s) = NmsTests.RandomBoxes(n, seed);
        var rng = new Random(seed);
        var categories = Enumerable.Range(0, n).Select(_ => (long)rng.Next(4)).ToArray();
        var settings = new SoftNmsSettings(method, sigma, minScore);
        var (keep, decayed) = SoftNms.Batched(tensor(b).view(n, 4), tensor(s), tensor(categories), threshold, settings);
        var expected = NaiveSoftNms(b, s, categories, threshold, settings);
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(expected.Select(e => e.Index).ToArray()));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(expected.Select(e => (float)e.Score).ToArray()).Within(1e-5f));
        Assert.That(expected.Count(e => e.Score < s[e.Index]), Is.GreaterThan(10), "the case must decay scores");
    }

    /// <summary>
    /// The paper's limit: as σ → 0 the gaussian decay is 0 at any overlap and 1 without one, which is hard NMS at IoU
    /// threshold 0. At σ = 1e-30 exp(−IoU²/σ) is exactly 0 in float32 for any IoU above 1e-14, so on random boxes the
    /// two agree exactly: the same boxes, in the same order, with their scores unchanged.
    /// </summary>
    [TestCase(200, 31)]
    [TestCase(500, 32)]
    public void GaussianWithVanishingSigmaIsHardNmsAtThresholdZero(int n, int seed)
    {
        using var scope = NewDisposeScope();
        var (b, s) = NmsTests.RandomBoxes(n, seed);
        var rng = new Random(seed);
        var categories = tensor(Enumerable.Range(0, n).Select(_ => (long)rng.Next(3)).ToArray());
        var (boxes, scores) = (tensor(b).view(n, 4), tensor(s));
        var (keep, decayed) = SoftNms.Batched(boxes, scores, categories, 0.7, new SoftNmsSettings(SoftNmsMethod.Gaussian, 1e-30, 1e-9));
        var hard = Nms.Batched(boxes, scores, categories, 0.0);
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(hard.data<long>().ToArray()));
        Assert.That(decayed.data<float>().ToArray(), Is.EqualTo(scores[hard].data<float>().ToArray()));
        Assert.That(hard.shape[0], Is.LessThan(n / 2).And.GreaterThan(3), "the case must suppress");
    }

    [Test]
    public void BadArgumentsAreRefused()
    {
        using var scope = NewDisposeScope();
        var (boxes, scores) = FourBoxes();
        Assert.Throws<ArgumentException>(() => SoftNms.Apply(boxes, scores[..3], 0.5, Linear()));
        Assert.Throws<ArgumentException>(() => SoftNms.Apply(boxes, scores, 0.5, new SoftNmsSettings(SoftNmsMethod.Gaussian, 0, 1e-3)));
        Assert.Throws<ArgumentException>(() => SoftNms.Batched(boxes, scores, tensor(new long[] { 0, 1 }), 0.5, Linear()));
    }

    /// <summary>
    /// Without Soft-NMS settings the detector's inference is hard NMS per class and the best topK, as before: on random
    /// boxes and probabilities its detections are exactly those of a naive per-class NMS in doubles, scores to the bit.
    /// </summary>
    [TestCase(0.5, 40, 41)]
    [TestCase(0.7, -1, 42)]
    public void WithoutSoftNmsInferenceIsPerClassHardNmsToTheBit(double nmsThreshold, long topK, int seed)
    {
        using var scope = NewDisposeScope();
        const int rois = 120, classes = 3;
        var (b, _) = NmsTests.RandomBoxes(rois, seed);
        var probabilities = softmax(randn(new long[] { rois, classes + 1 }, generator: new Generator((ulong)seed)) * 2, 1);
        // Boxes lie within 1000², so clipping to the image changes none.
        var (det, roi) = FastRcnnInference.SingleImage(tensor(b).view(rois, 4), probabilities, 1000, 1000, 0.05, nmsThreshold, topK);

        var p = probabilities.data<float>().ToArray();
        var pairs = Enumerable.Range(0, rois * classes).Where(k => p[k / classes * (classes + 1) + k % classes] > 0.05).ToArray();
        var pairBoxes = pairs.SelectMany(k => b.Skip(k / classes * 4).Take(4)).ToArray();
        var pairScores = pairs.Select(k => p[k / classes * (classes + 1) + k % classes]).ToArray();
        var kept = NmsTests.Naive(pairBoxes, pairScores, pairs.Select(k => (long)(k % classes)).ToArray(), nmsThreshold);
        if (topK >= 0) kept = kept.Take((int)topK).ToList();
        Assert.That(roi.data<long>().ToArray(), Is.EqualTo(kept.Select(i => (long)(pairs[i] / classes)).ToArray()));
        Assert.That(det.Classes!.data<long>().ToArray(), Is.EqualTo(kept.Select(i => (long)(pairs[i] % classes)).ToArray()));
        Assert.That(det.Scores!.data<float>().ToArray(), Is.EqualTo(kept.Select(i => pairScores[i]).ToArray()));
        Assert.That(kept.Count, Is.LessThan(pairs.Length).And.GreaterThan(10));
    }

    /// <summary>The detections of the cascade's heads under one NMS rule; the same seeds give every call the same weights and inputs.</summary>
    private static Instances Detect(CascadeRoiHeadsSettings settings)
    {
        var (heads, features) = RoiCascadeTests.HeadsWithDistinctStages(settings with { MaskOn = false });
        using var disposeHeads = heads;
        // Proposals inside the 64² image the stride-4 features cover: outside it every RoI pools the same zeros and
        // ties scores, which hard NMS (by index) and the Soft-NMS kernel (by its working slots) break differently.
        var rng = new Random(15);
        var proposals = Enumerable.Range(0, 40).SelectMany(_ =>
        {
            float x = rng.NextSingle() * 44, y = rng.NextSingle() * 44;
            return new[] { x, y, x + 4 + rng.NextSingle() * 16, y + 4 + rng.NextSingle() * 16 };
        }).ToArray();
        return heads.Forward(features, new[] { new Instances(64, 64, new Boxes(tensor(proposals).view(40, 4))) }).Detections![0];
    }

    /// <summary>
    /// Soft-NMS reaches the cascade's inference through its settings. Linear with minimum 0 drops nothing, so it returns
    /// every (RoI, class) pair above the score threshold, which hard NMS at IoU 1 also keeps, each at a score no higher;
    /// the gaussian's σ → 0 limit returns exactly hard NMS at IoU 0.
    /// </summary>
    [Test]
    public void CascadeInferenceAppliesSoftNmsFromItsSettings()
    {
        using var scope = NewDisposeScope();
        var tiny = RoiHeadModulesTests.TinySettings() with { TestScoreThreshold = 0.05, DetectionsPerImage = -1 };
        var all = Detect(tiny with { TestNmsThreshold = 1.0 });
        var softLinear = Detect(tiny with { TestNmsThreshold = 0.5, TestSoftNms = new SoftNmsSettings(SoftNmsMethod.Linear, 0.5, 0) });
        var hardHalf = Detect(tiny with { TestNmsThreshold = 0.5 });
        Assert.That(hardHalf.Count, Is.LessThan(all.Count), "hard NMS at 0.5 suppresses some pairs");
        Assert.That(softLinear.Count, Is.EqualTo(all.Count));
        static List<string> Keys(Instances d) =>
            Enumerable.Range(0, (int)d.Count).Select(i => $"{d.Classes![i].ToInt64()} {string.Join(",", d.Boxes.Tensor[i].data<float>().ToArray())}").ToList();
        var allKeys = Keys(all);
        var softKeys = Keys(softLinear);
        Assert.That(softKeys, Is.EquivalentTo(allKeys));
        var allScores = all.Scores!.data<float>().ToArray();
        var softScores = softLinear.Scores!.data<float>().ToArray();
        var undecayed = softKeys.Select(key => allScores[allKeys.IndexOf(key)]).ToArray();
        Assert.That(softScores.Zip(undecayed).All(pair => pair.First <= pair.Second), Is.True, "no score rises");
        Assert.That(softScores.Zip(undecayed).Count(pair => pair.First < pair.Second), Is.GreaterThan(0), "some scores decayed");
        Assert.That(softScores, Is.Ordered.Descending);

        var hardZero = Detect(tiny with { TestNmsThreshold = 0.0 });
        var softLimit = Detect(tiny with { TestSoftNms = new SoftNmsSettings(SoftNmsMethod.Gaussian, 1e-30, 1e-3) });
        Assert.That(softLimit.Classes!.data<long>().ToArray(), Is.EqualTo(hardZero.Classes!.data<long>().ToArray()));
        Assert.That(softLimit.Boxes.Tensor.data<float>().ToArray(), Is.EqualTo(hardZero.Boxes.Tensor.data<float>().ToArray()));
        Assert.That(softLimit.Scores!.data<float>().ToArray(), Is.EqualTo(hardZero.Scores!.data<float>().ToArray()));
        Assert.That(hardZero.Count, Is.GreaterThan(1).And.LessThan(hardHalf.Count));
    }
}
