using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class MultiScaleRoiAlignTests
{
    private static Boxes Square(params float[] sides) =>
        new(tensor(sides.SelectMany(s => new[] { 10f, 20f, 10f + s, 20f + s }).ToArray()).view(-1, 4));

    [Test]
    public void LevelsFollowDetectron2sRule()
    {
        using var scope = NewDisposeScope();
        // floor(4 + log2(side / 224)) clamped to [2, 5], minus 2:
        // 224 → 4, 112 → 3, 111 → 2, 10 → 2 (clamped), 447 → 4, 448 → 5, 1000 → 5 (clamped), 0 → 2.
        var levels = MultiScaleRoiAlign.AssignBoxesToLevels(
            new[] { Square(224, 112, 111, 10), Square(447, 448, 1000, 0) }, 2, 5, 224, 4);
        Assert.That(levels.data<long>().ToArray(), Is.EqualTo(new long[] { 2, 1, 0, 0, 2, 3, 3, 0 }));
    }

    [Test]
    public void PoolsEachBoxFromItsLevelAndKeepsBoxOrder()
    {
        using var scope = NewDisposeScope();
        var pooler = new MultiScaleRoiAlign(7, new[] { 1 / 4.0, 1 / 8.0, 1 / 16.0, 1 / 32.0 });
        Assert.That((pooler.MinLevel, pooler.MaxLevel), Is.EqualTo((2, 5)));
        var gen = new Generator(2);
        var features = new[] { 64L, 32, 16, 8 }.Select(s => randn(new[] { 2, 3, s, s }, generator: gen)).ToArray();
        var boxesPerImage = new[] { Square(300, 20, 120), Square(60, 200) };
        var pooled = pooler.Forward(features, boxesPerImage);
        Assert.That(pooled.shape, Is.EqualTo(new long[] { 5, 3, 7, 7 }));
        var rois = RoiAlign.BoxesToRois(boxesPerImage);
        Assert.That(rois[3, 0].ToSingle(), Is.EqualTo(1f), "the second image's boxes carry batch index 1");
        // Expected levels: 300 → p4 (index 2), 20 → p2, 120 → p3, 60 → p2, 200 → p3.
        var expectedLevel = new[] { 2, 0, 1, 0, 1 };
        var scales = new[] { 1 / 4.0, 1 / 8.0, 1 / 16.0, 1 / 32.0 };
        for (int i = 0; i < 5; i++)
        {
            int level = expectedLevel[i];
            var direct = RoiAlign.Apply(features[level], rois[i..(i + 1)], (7, 7), scales[level], 0, true);
            Assert.That(pooled[i].allclose(direct[0], rtol: 0, atol: 0), Is.True, $"box {i} pooled from level {level}");
        }
    }

    /// <summary>
    /// Under bf16 autocast the pyramid arrives in bf16 while the boxes stay float32: each box is pooled at its exact
    /// coordinates from the bf16 values, i.e. equal to float32 pooling of the bf16-rounded pyramid up to bf16 rounding
    /// of the result. Rounding the corners to bf16 (steps of 1 between 128 and 256, 2 above) would shift the samples
    /// by up to a quarter of a p2 pixel, far beyond that tolerance.
    /// </summary>
    [Test]
    public void Bf16PyramidIsPooledAtTheUnroundedBoxes()
    {
        using var scope = NewDisposeScope();
        var scales = new[] { 1 / 4.0, 1 / 8.0 };
        var pooler = new MultiScaleRoiAlign(7, scales);
        var gen = new Generator(6);
        var features = new[] { 64L, 32 }.Select(s => randn(new[] { 1, 4, s, s }, generator: gen).to_type(ScalarType.BFloat16)).ToArray();
        var boxes = new Boxes(tensor(new[] { 130.37f, 141.61f, 171.13f, 158.29f, 33.3f, 129.7f, 250.9f, 233.1f, 201.41f, 12.77f, 255.05f, 61.93f }).view(3, 4));
        var pooled = pooler.Forward(features, new[] { boxes });
        Assert.That(pooled.dtype, Is.EqualTo(ScalarType.BFloat16));
        var rois = RoiAlign.BoxesToRois(new[] { boxes });
        Assert.That(rois.dtype, Is.EqualTo(ScalarType.Float32));
        // √area 26, 150, 51 → p2, p3, p2.
        var expectedLevel = new[] { 0, 1, 0 };
        for (int i = 0; i < 3; i++)
        {
            int level = expectedLevel[i];
            var reference = RoiAlign.Apply(features[level].to_type(ScalarType.Float32), rois[i..(i + 1)], (7, 7), scales[level], 0, true)[0];
            var error = (pooled[i].to_type(ScalarType.Float32) - reference).abs() - (reference.abs() / 128 + 1e-5);
            Assert.That(error.max().ToDouble(), Is.LessThanOrEqualTo(0), $"box {i} pooled from level {level} at its exact corners");
        }
    }

    [Test]
    public void GradientReachesOnlyTheLevelsThatPooled()
    {
        using var scope = NewDisposeScope();
        var pooler = new MultiScaleRoiAlign(2, new[] { 1 / 4.0, 1 / 8.0 });
        var p2 = randn(1, 1, 16, 16).requires_grad_(true);
        var p3 = randn(1, 1, 8, 8).requires_grad_(true);
        pooler.Forward(new[] { p2, p3 }, new[] { Square(8) }).sum().backward();
        Assert.That(p2.grad!.abs().sum().ToDouble(), Is.GreaterThan(0));
        Assert.That(p3.grad is null || p3.grad.abs().sum().ToDouble() == 0, Is.True);
    }

    /// <summary>
    /// Each level's rows are copied into the output at their boxes' places: the gradient of Σ wᵢ · pooledᵢ must reach each
    /// level exactly as the boxes pooled from it one by one send it (their RoIAlign alone, same weights), and no box at all
    /// gives an empty (0, C, S, S) result.
    /// </summary>
    [Test]
    public void EachRowsGradientReachesItsOwnLevel()
    {
        using var scope = NewDisposeScope();
        var scales = new[] { 1 / 4.0, 1 / 8.0, 1 / 16.0 };
        var pooler = new MultiScaleRoiAlign(3, scales);
        var gen = new Generator(11);
        var features = new[] { 64L, 32, 16 }.Select(s => randn(new[] { 2, 2, s, s }, ScalarType.Float64, generator: gen).requires_grad_(true)).ToArray();
        // √area 20, 120, 300, 60 → p2 (20 below p2, clamped), p3, p4, p2; two images.
        var boxesPerImage = new[] { Square(20, 120, 300), Square(60) };
        var expectedLevel = new[] { 0, 1, 2, 0 };
        var weights = randn(new[] { 4L, 2, 3, 3 }, ScalarType.Float64, generator: gen);
        (pooler.Forward(features, boxesPerImage.Select(b => new Boxes(b.Tensor.to_type(ScalarType.Float64))).ToList()) * weights).sum().backward();
        var rois = RoiAlign.BoxesToRois(boxesPerImage).to_type(ScalarType.Float64);
        var reference = features.Select(f => zeros_like(f)).ToArray();
        for (int i = 0; i < 4; i++)
        {
            int level = expectedLevel[i];
            var alone = features[level].detach().clone().requires_grad_(true);
            (RoiAlign.Apply(alone, rois[i..(i + 1)], (3, 3), scales[level], 0, true)[0] * weights[i]).sum().backward();
            reference[level] += alone.grad!;
        }
        for (int level = 0; level < 3; level++)
            Assert.That(features[level].grad!.allclose(reference[level], rtol: 0, atol: 1e-12), Is.True, $"level {level}");
        Assert.That(features[2].grad!.abs().sum().ToDouble(), Is.GreaterThan(0), "p4, pooled by one box, received its gradient");

        var none = pooler.Forward(features.Select(f => f.detach()).ToArray(), [new Boxes(zeros(0, 4, ScalarType.Float64)), new Boxes(zeros(0, 4, ScalarType.Float64))]);
        Assert.That(none.shape, Is.EqualTo(new long[] { 0, 2, 3, 3 }));
    }

    [Test]
    public void RejectsScalesThatAreNotAHalvingPyramid()
    {
        Assert.Throws<ArgumentException>(() => _ = new MultiScaleRoiAlign(7, new[] { 1 / 4.0, 1 / 16.0 }));
        Assert.Throws<ArgumentException>(() => _ = new MultiScaleRoiAlign(7, new[] { 0.3 }));
    }
}
