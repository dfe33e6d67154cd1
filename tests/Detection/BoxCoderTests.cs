using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Modeling;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class BoxCoderTests
{
    [Test]
    public void DeltasMatchHandComputedValuesWithWeights()
    {
        using var scope = NewDisposeScope();
        // Source w 10, h 20, centre (5, 10); target w 20, h 20, centre (12, 14).
        var coder = new Box2BoxTransform(10, 10, 5, 5);
        var deltas = coder.GetDeltas(new Boxes(tensor(new[] { 0f, 0, 10, 20 }).view(1, 4)),
            new Boxes(tensor(new[] { 2f, 4, 22, 24 }).view(1, 4)));
        var d = deltas.data<float>().ToArray();
        Assert.That(d[0], Is.EqualTo(10 * 7.0 / 10).Within(1e-5));
        Assert.That(d[1], Is.EqualTo(10 * 4.0 / 20).Within(1e-5));
        Assert.That(d[2], Is.EqualTo(5 * Math.Log(2)).Within(1e-5));
        Assert.That(d[3], Is.EqualTo(0).Within(1e-6));
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(10, 10, 5, 5)]
    [TestCase(30, 30, 15, 15)]
    public void EncodeDecodeRoundTripsRandomBoxes(double wx, double wy, double ww, double wh)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        Boxes Random()
        {
            var xy = rand(new long[] { 50, 2 }, generator: gen, dtype: ScalarType.Float64) * 100;
            var wh2 = rand(new long[] { 50, 2 }, generator: gen, dtype: ScalarType.Float64) * 80 + 1;
            return new Boxes(cat(new[] { xy, xy + wh2 }, 1));
        }
        var src = Random();
        var tgt = Random();
        var coder = new Box2BoxTransform(wx, wy, ww, wh);
        var decoded = coder.ApplyDeltas(coder.GetDeltas(src, tgt), src);
        Assert.That((decoded - tgt.Tensor).abs().max().item<double>(), Is.LessThan(1e-9));
    }

    [Test]
    public void DecodeClampsLargeScaleDeltasAndHandlesSeveralBoxesPerRow()
    {
        using var scope = NewDisposeScope();
        var coder = new Box2BoxTransform(1, 1, 1, 1);
        var box = new Boxes(tensor(new[] { 0f, 0, 2, 4 }).view(1, 4));
        // Two boxes per row (e.g. two classes): identity and a huge width delta clamped at log(1000/16).
        var deltas = tensor(new[] { 0f, 0, 0, 0, 0.5f, 0, 100, 0 }).view(1, 8);
        var r = coder.ApplyDeltas(deltas, box).data<float>().ToArray();
        Assert.That(r[..4], Is.EqualTo(new[] { 0f, 0, 2, 4 }));
        double width = 2 * 1000.0 / 16;
        double cx = 1 + 0.5 * 2;
        Assert.That(r[4], Is.EqualTo(cx - width / 2).Within(1e-3));
        Assert.That(r[6], Is.EqualTo(cx + width / 2).Within(1e-3));
        Assert.That(r[5], Is.EqualTo(0f).Within(1e-6));
        Assert.Throws<ArgumentException>(() => coder.ApplyDeltas(zeros(1, 5), box));
        Assert.Throws<ArgumentException>(() => _ = new Box2BoxTransform(0, 1, 1, 1));
    }
}
