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

    /// <summary>
    /// Autocast heads emit bf16 deltas: the boxes are decoded in float32 from the deltas' values, not rounded to bf16
    /// (whose steps are 4 pixels between 512 and 1024, where these boxes lie).
    /// </summary>
    [Test]
    public void Bf16DeltasAreDecodedInFloat32()
    {
        using var scope = NewDisposeScope();
        var coder = new Box2BoxTransform(10, 10, 5, 5);
        var boxes = new Boxes(tensor(new[] { 601.3, 713.9, 689.1, 901.7, 517.25, 530.5, 1010.75, 1019.5 }).view(2, 4));
        var deltas = tensor(new[] { 0.31, -0.52, 0.27, -0.13, -1.1, 0.7, 0.05, 0.4 }).view(2, 4).to_type(ScalarType.BFloat16);
        var decoded = coder.ApplyDeltas(deltas, boxes);
        Assert.That(decoded.dtype, Is.EqualTo(ScalarType.Float32));
        // Reference in doubles from the values the bf16 deltas hold.
        var d = deltas.to_type(ScalarType.Float64).data<double>().ToArray();
        var b = boxes.Tensor.data<double>().ToArray();
        var actual = decoded.to_type(ScalarType.Float64).data<double>().ToArray();
        for (int i = 0; i < 2; i++)
        {
            double w = b[4 * i + 2] - b[4 * i], h = b[4 * i + 3] - b[4 * i + 1];
            double cx = b[4 * i] + w / 2 + d[4 * i] / 10 * w, cy = b[4 * i + 1] + h / 2 + d[4 * i + 1] / 10 * h;
            double pw = Math.Exp(d[4 * i + 2] / 5) * w, ph = Math.Exp(d[4 * i + 3] / 5) * h;
            var expected = new[] { cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2 };
            for (int j = 0; j < 4; j++)
                Assert.That(actual[4 * i + j], Is.EqualTo(expected[j]).Within(1e-3), $"box {i} coordinate {j}");
        }
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
