using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class ModelPyramidTests
{
    [TestCase(64, 64)]
    [TestCase(64, 96)]
    [TestCase(48, 80)]
    public void SimpleFeaturePyramidGivesP2ToP6WithTheirStrides(int height, int width)
    {
        using var scope = NewDisposeScope();
        using var pyramid = new SimpleFeaturePyramid(new VisionMamba(ModelTestConfigs.TinyDet), outChannels: 8);
        pyramid.eval();
        var maps = pyramid.forward(randn(1, 3, height, width));
        Assert.That(maps.Select(m => m.Name), Is.EqualTo(new[] { "p2", "p3", "p4", "p5", "p6" }));
        Assert.That(maps.Select(m => m.Stride), Is.EqualTo(new[] { 4, 8, 16, 32, 64 }));
        int rows = height / 16, cols = width / 16;
        var expected = new (long, long)[]
        {
            (rows * 4, cols * 4), (rows * 2, cols * 2), (rows, cols), (rows / 2, cols / 2),
            ((rows / 2 - 1) / 2 + 1, (cols / 2 - 1) / 2 + 1),
        };
        for (int i = 0; i < maps.Count; i++)
            Assert.That(maps[i].Map.shape, Is.EqualTo(new long[] { 1, 8, expected[i].Item1, expected[i].Item2 }), maps[i].Name);
    }

    [TestCase(FeatureSource.MixerOutput, false)]
    [TestCase(FeatureSource.ResidualStream, true)]
    public void SegmentationPyramidGivesFourLevelsWithBackboneChannels(FeatureSource source, bool rope)
    {
        // Mixer-output taps (vimseg_tiny) and residual-stream taps with RoPE (vimseg_small) both give 4 maps.
        using var scope = NewDisposeScope();
        var config = ModelTestConfigs.TinyDet with { Depth = 4, UseRope = rope, RopeResidual = rope, Features = source, TapBlocks = new[] { 0, 1, 2, 3 } };
        using var pyramid = new SegmentationPyramid(new VisionMamba(config));
        pyramid.eval();
        var maps = pyramid.forward(randn(2, 3, 48, 64));
        Assert.That(maps.Select(m => m.Stride), Is.EqualTo(new[] { 4, 8, 16, 32 }));
        Assert.That(maps.Select(m => m.Map.shape), Is.EqualTo(new[]
        {
            new long[] { 2, 16, 12, 16 }, new long[] { 2, 16, 6, 8 }, new long[] { 2, 16, 3, 4 }, new long[] { 2, 16, 1, 2 },
        }));
    }

    [Test]
    public void ResidualStreamTapsAreReadAtTheStartOfTheNextBlock()
    {
        // Without RoPE: tap after block 0 = residual₀ + hidden₀ (what block 1 computes), last = hidden₁ + residual₁.
        using var scope = NewDisposeScope();
        var config = ModelTestConfigs.TinyDet with { UseRope = false, RopeResidual = false, TapBlocks = new[] { 0, 1 } };
        using var model = new VisionMamba(config, seed: 8);
        model.eval();
        var image = randn(1, 3, 64, 32);
        var taps = model.ForwardTaps(image);
        var x = model.EmbedTokens(image);
        var (h0, r0) = model.Layers[0].forward(x, null);
        var (h1, r1) = model.Layers[1].forward(h0, r0);
        Tensor AsMap(Tensor t) => t.transpose(1, 2).reshape(1, 16, 4, 2);
        Assert.That(taps, Has.Count.EqualTo(2));
        Assert.That(taps[0].allclose(AsMap(r0 + h0), 1e-5, 1e-6), Is.True);
        Assert.That(taps[1].allclose(AsMap(h1 + r1), 1e-5, 1e-6), Is.True);

        using var mixerTaps = new VisionMamba(config with { Features = FeatureSource.MixerOutput }, seed: 8);
        mixerTaps.eval();
        var hidden = mixerTaps.ForwardTaps(image);
        Assert.That(hidden[0].allclose(AsMap(h0), 1e-5, 1e-6) && hidden[1].allclose(AsMap(h1), 1e-5, 1e-6), Is.True);
    }

    [Test]
    public void DeitTapsFeedBothPyramids()
    {
        using var scope = NewDisposeScope();
        var config = ModelTestConfigs.TinyDeit with { Depth = 4, NumClasses = 0, TapBlocks = new[] { 0, 1, 2, 3 } };
        using var seg = new SegmentationPyramid(new VisionTransformer(config));
        seg.eval();
        var maps = seg.forward(randn(1, 3, 32, 64));
        Assert.That(maps[0].Map.shape, Is.EqualTo(new long[] { 1, 32, 8, 16 }));
        using var det = new SimpleFeaturePyramid(new VisionTransformer(config with { TapBlocks = Array.Empty<int>() }), outChannels: 8);
        det.eval();
        var levels = det.forward(randn(1, 3, 32, 64));
        Assert.That(levels.Select(l => l.Map.shape[2]), Is.EqualTo(new long[] { 8, 4, 2, 1, 1 }));
    }
}
