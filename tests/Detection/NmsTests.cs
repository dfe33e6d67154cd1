using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Ops;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class NmsTests
{
    /// <summary>Naive greedy NMS in doubles: take the best remaining box, drop all remaining boxes over the threshold.</summary>
    internal static List<long> Naive(float[] boxes, float[] scores, long[]? categories, double threshold)
    {
        var remaining = Enumerable.Range(0, scores.Length).OrderByDescending(i => scores[i]).ThenBy(i => i).ToList();
        var kept = new List<long>();
        double Iou(int a, int b)
        {
            double iw = Math.Max(0, Math.Min(boxes[a * 4 + 2], boxes[b * 4 + 2]) - (double)Math.Max(boxes[a * 4], boxes[b * 4]));
            double ih = Math.Max(0, Math.Min(boxes[a * 4 + 3], boxes[b * 4 + 3]) - (double)Math.Max(boxes[a * 4 + 1], boxes[b * 4 + 1]));
            double areaA = ((double)boxes[a * 4 + 2] - boxes[a * 4]) * ((double)boxes[a * 4 + 3] - boxes[a * 4 + 1]);
            double areaB = ((double)boxes[b * 4 + 2] - boxes[b * 4]) * ((double)boxes[b * 4 + 3] - boxes[b * 4 + 1]);
            return iw * ih / (areaA + areaB - iw * ih);
        }
        while (remaining.Count > 0)
        {
            int best = remaining[0];
            kept.Add(best);
            remaining = remaining.Skip(1)
                .Where(j => (categories is not null && categories[j] != categories[best]) || !(Iou(best, j) > threshold)).ToList();
        }
        return kept;
    }

    internal static (float[] Boxes, float[] Scores) RandomBoxes(int n, int seed)
    {
        var rng = new Random(seed);
        var boxes = new float[n * 4];
        var scores = new float[n];
        for (int i = 0; i < n; i++)
        {
            // Clustered so that many pairs overlap around the thresholds.
            int cluster = rng.Next(Math.Max(1, n / 8));
            float cx = (cluster % 10) * 37f, cy = (cluster / 10) * 41f;
            float x = cx + (float)rng.NextDouble() * 25, y = cy + (float)rng.NextDouble() * 25;
            float w = 15 + (float)rng.NextDouble() * 50, h = 15 + (float)rng.NextDouble() * 50;
            new[] { x, y, x + w, y + h }.CopyTo(boxes, i * 4);
            scores[i] = (float)rng.NextDouble();
        }
        return (boxes, scores);
    }

    [TestCase(50, 0.5, 1)]
    [TestCase(400, 0.3, 2)]
    [TestCase(400, 0.7, 3)]
    [TestCase(1000, 0.5, 4)]
    public void MatchesNaiveReferenceOnRandomBoxes(int n, double threshold, int seed)
    {
        using var scope = NewDisposeScope();
        var (b, s) = RandomBoxes(n, seed);
        var keep = Nms.Apply(tensor(b).view(n, 4), tensor(s), threshold);
        Assert.That(keep.dtype, Is.EqualTo(ScalarType.Int64));
        var expected = Naive(b, s, null, threshold);
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(expected.ToArray()));
        Assert.That(expected.Count, Is.LessThan(n).And.GreaterThan(1), "the case must suppress some boxes and keep several");
    }

    [Test]
    public void HandCasesTiesIdenticalBoxesAndEmptyInput()
    {
        using var scope = NewDisposeScope();
        // Three identical boxes with tied scores: the first in input order survives; the far box stays.
        var boxes = tensor(new[] { 0f, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10, 50, 50, 60, 60 }).view(4, 4);
        Assert.That(Nms.Apply(boxes, tensor(new[] { 0.5f, 0.9f, 0.9f, 0.1f }), 0.5).data<long>().ToArray(),
            Is.EqualTo(new long[] { 1, 3 }));
        // IoU of [0,10]x[0,10] and [5,15]x[0,10] is 1/3: kept at threshold 0.34, suppressed at 0.33.
        var pair = tensor(new[] { 0f, 0, 10, 10, 5, 0, 15, 10 }).view(2, 4);
        var scores = tensor(new[] { 0.2f, 0.8f });
        Assert.That(Nms.Apply(pair, scores, 0.34).data<long>().ToArray(), Is.EqualTo(new long[] { 1, 0 }));
        Assert.That(Nms.Apply(pair, scores, 0.33).data<long>().ToArray(), Is.EqualTo(new long[] { 1 }));
        Assert.That(Nms.Apply(zeros(0, 4), zeros(0), 0.5).shape, Is.EqualTo(new long[] { 0 }));
        Assert.That(Nms.Batched(zeros(0, 4), zeros(0), zeros(0, ScalarType.Int64), 0.5).shape, Is.EqualTo(new long[] { 0 }));
        Assert.Throws<ArgumentException>(() => Nms.Apply(zeros(3, 4), zeros(2), 0.5));
        Assert.Throws<ArgumentException>(() => Nms.Apply(zeros(3, 5), zeros(3), 0.5));
    }

    [Test]
    public void BatchedNeverSuppressesAcrossCategories()
    {
        using var scope = NewDisposeScope();
        // Identical boxes in two categories (one with negative coordinates): one survivor per category.
        var boxes = tensor(new[] { -5f, -5, 10, 10, -5, -5, 10, 10, -5, -5, 10, 10, -4, -5, 10, 10 }).view(4, 4);
        var keep = Nms.Batched(boxes, tensor(new[] { 0.9f, 0.8f, 0.7f, 0.6f }), tensor(new long[] { 0, 1, 0, 1 }), 0.5);
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1 }));
    }

    [TestCase(300, 0.5, 7)]
    [TestCase(600, 0.6, 8)]
    public void BatchedMatchesNaivePerCategoryReference(int n, double threshold, int seed)
    {
        using var scope = NewDisposeScope();
        var (b, s) = RandomBoxes(n, seed);
        var rng = new Random(seed + 100);
        var categories = Enumerable.Range(0, n).Select(_ => (long)rng.Next(5)).ToArray();
        var keep = Nms.Batched(tensor(b).view(n, 4), tensor(s), tensor(categories), threshold);
        Assert.That(keep.data<long>().ToArray(), Is.EqualTo(Naive(b, s, categories, threshold).ToArray()));
    }

    /// <summary>
    /// Under autocast boxes and scores arrive in bf16 / fp16: the result is the float NMS of those (rounded) values.
    /// Batched NMS offsets each category by (category × coordinate span), about 40 × 600 here: done in bf16 that sum
    /// would round in steps of 128 and merge or collapse the boxes of one category.
    /// </summary>
    [TestCase(ScalarType.BFloat16, 9)]
    [TestCase(ScalarType.Float16, 10)]
    public void HalfBoxesAndScoresMatchTheReferenceOnTheirValues(ScalarType half, int seed)
    {
        using var scope = NewDisposeScope();
        const int n = 400;
        var (b, s) = RandomBoxes(n, seed);
        var boxes = tensor(b).view(n, 4).to_type(half);
        var scores = tensor(s).to_type(half);
        // The reference sees exactly the values the half tensors hold.
        var heldBoxes = boxes.to_type(ScalarType.Float32).flatten().data<float>().ToArray();
        var heldScores = scores.to_type(ScalarType.Float32).data<float>().ToArray();
        Assert.That(Nms.Apply(boxes, scores, 0.5).data<long>().ToArray(), Is.EqualTo(Naive(heldBoxes, heldScores, null, 0.5).ToArray()));

        var rng = new Random(seed + 100);
        var categories = Enumerable.Range(0, n).Select(_ => (long)rng.Next(45)).ToArray();
        var expected = Naive(heldBoxes, heldScores, categories, 0.5);
        Assert.That(Nms.Batched(boxes, scores, tensor(categories), 0.5).data<long>().ToArray(), Is.EqualTo(expected.ToArray()));
    }

    [Test]
    public void TensorsOnADeviceWithoutAKernelAreRefusedBeforeAnyNativeCall()
    {
        // Dispatch is by device: CPU → C++ kernel, CUDA → CUDA kernel; a meta tensor (no memory) must never
        // reach either, whose raw data pointer it would otherwise be.
        var meta = torch.device("meta");
        using var boxes = zeros(new[] { 3L, 4 }, device: meta);
        using var scores = zeros(3, device: meta);
        var e = Assert.Throws<ArgumentException>(() => Nms.Apply(boxes, scores, 0.5))!;
        Assert.That(e.Message, Does.Contain("Nms").And.Contain("meta").And.Contain("CPU and CUDA only"));
    }
}
