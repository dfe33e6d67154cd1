using NUnit.Framework;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class AnchorGeneratorTests
{
    [Test]
    public void CellAnchorsHaveTheSizeAreaAndRatio()
    {
        using var scope = NewDisposeScope();
        var gen = AnchorGenerator.VitDetDefault();
        var cell = gen.CellAnchors(0).data<float>().ToArray();
        double w05 = Math.Sqrt(32.0 * 32 / 0.5), h05 = 0.5 * w05; // 45.25 × 22.63
        double[] expected =
        {
            -w05 / 2, -h05 / 2, w05 / 2, h05 / 2,
            -16, -16, 16, 16,
            -h05 / 2, -w05 / 2, h05 / 2, w05 / 2,
        };
        for (int i = 0; i < 12; i++)
            Assert.That(cell[i], Is.EqualTo(expected[i]).Within(1e-4), $"cell[{i}]");
        var level4 = gen.CellAnchors(4);
        Assert.That(((level4[1, 2] - level4[1, 0]) * (level4[1, 3] - level4[1, 1])).item<float>(), Is.EqualTo(512f * 512f).Within(1));
    }

    [Test]
    public void GridAnchorsAreLocationMajorRowMajorWithOffsetZero()
    {
        using var scope = NewDisposeScope();
        var gen = AnchorGenerator.VitDetDefault();
        var grids = new (long, long)[] { (2, 3), (1, 2), (1, 1), (1, 1), (0, 0) };
        var anchors = gen.Generate(grids);
        Assert.That(anchors.Select(a => a.shape[0]), Is.EqualTo(new long[] { 18, 6, 3, 3, 0 }));
        // Level p2 (stride 4), location y = 1, x = 2 → centre (8, 4); ratio 1 is the middle cell anchor.
        Assert.That(anchors[0][(1 * 3 + 2) * 3 + 1].data<float>().ToArray(), Is.EqualTo(new[] { -8f, -12f, 24f, 20f }));
        // First anchor of p3 (stride 8, size 64, ratio 0.5) is centred on (0, 0).
        var first = anchors[1][0].data<float>().ToArray();
        Assert.That(first[0] + first[2], Is.EqualTo(0f).Within(1e-5));
        Assert.That(first[2] - first[0], Is.EqualTo(Math.Sqrt(64.0 * 64 / 0.5)).Within(1e-3));
        // p3 location x = 1 → centre (8, 0), ratio 2 (tall).
        var tall = anchors[1][1 * 3 + 2].data<float>().ToArray();
        Assert.That((tall[0] + tall[2]) / 2, Is.EqualTo(8f).Within(1e-5));
        Assert.That(tall[3] - tall[1], Is.EqualTo(2 * (tall[2] - tall[0])).Within(1e-3));
    }

    [Test]
    public void OffsetHalfShiftsCentresAndBadArgumentsAreRejected()
    {
        using var scope = NewDisposeScope();
        var gen = new AnchorGenerator(new[] { new[] { 16.0 } }, new[] { 1.0 }, new long[] { 8 }, 0.5);
        var a = gen.Generate(new (long, long)[] { (1, 2) })[0].data<float>().ToArray();
        Assert.That(a, Is.EqualTo(new[] { -4f, -4f, 12f, 12f, 4f, -4f, 20f, 12f }));
        Assert.Throws<ArgumentException>(() => gen.Generate(new (long, long)[] { (1, 1), (1, 1) }));
        Assert.Throws<ArgumentException>(() => _ = new AnchorGenerator(new[] { new[] { 16.0 } }, new[] { 1.0 }, new long[] { 8, 16 }, 0));
    }
}
