using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class BoxStructuresTests
{
    private static Boxes B(params float[] xyxy) => new(tensor(xyxy).view(-1, 4));

    [Test]
    public void AreaClipNonEmptyAndScaleFollowTheDefinitions()
    {
        using var scope = NewDisposeScope();
        var boxes = B(0, 0, 10, 20, -5, 2, 3, 50, 4, 4, 4, 9);
        Assert.That(boxes.Area().data<float>().ToArray(), Is.EqualTo(new[] { 200f, 384f, 0f }));
        var clipped = boxes.Clip(imageHeight: 30, imageWidth: 8);
        Assert.That(clipped.Tensor.data<float>().ToArray(),
            Is.EqualTo(new[] { 0f, 0f, 8f, 20f, 0f, 2f, 3f, 30f, 4f, 4f, 4f, 9f }));
        Assert.That(boxes.NonEmpty().data<bool>().ToArray(), Is.EqualTo(new[] { true, true, false }));
        Assert.That(boxes.NonEmpty(threshold: 9).data<bool>().ToArray(), Is.EqualTo(new[] { true, false, false }));
        Assert.That(boxes.Scale(0.5, 2).Tensor[0].data<float>().ToArray(), Is.EqualTo(new[] { 0f, 0f, 5f, 40f }));
    }

    [Test]
    public void ConstructorRejectsWrongShapesAndAcceptsEmpty()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => _ = new Boxes(zeros(3, 5)));
        Assert.Throws<ArgumentException>(() => _ = new Boxes(zeros(new long[] { 3, 4 }, ScalarType.Int64)));
        Assert.That(new Boxes(zeros(0)).Count, Is.EqualTo(0));
    }

    [Test]
    public void PairwiseIouMatchesHandComputedOverlaps()
    {
        using var scope = NewDisposeScope();
        var a = B(0, 0, 10, 10, 3, 3, 3, 3);
        var b = B(5, 5, 15, 15, 10, 0, 20, 10, 0, 0, 10, 10, 0, 0, 5, 10);
        var iou = BoxGeometry.PairwiseIou(a, b);
        Assert.That(iou.shape, Is.EqualTo(new long[] { 2, 4 }));
        var expected = new[,] { { 25.0 / 175, 0, 1, 0.5 }, { 0, 0, 0, 0 } };
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
                Assert.That(iou[i, j].item<float>(), Is.EqualTo(expected[i, j]).Within(1e-6), $"iou[{i},{j}]");
        // A zero-area box against itself has no intersection: 0, not NaN.
        Assert.That(BoxGeometry.PairwiseIou(B(3, 3, 3, 3), B(3, 3, 3, 3)).item<float>(), Is.EqualTo(0f));
        Assert.That(BoxGeometry.PairwiseIou(B(), a).shape, Is.EqualTo(new long[] { 0, 2 }));
    }

    [Test]
    public void PairwiseIoaDividesByTheSecondBoxArea()
    {
        using var scope = NewDisposeScope();
        var big = B(0, 0, 10, 10);
        var half = B(0, 0, 5, 10);
        Assert.That(BoxGeometry.PairwiseIoa(big, half).item<float>(), Is.EqualTo(1f).Within(1e-6));
        Assert.That(BoxGeometry.PairwiseIoa(half, big).item<float>(), Is.EqualTo(0.5f).Within(1e-6));
        Assert.That(BoxGeometry.PairwiseIoa(big, B(20, 20, 30, 30)).item<float>(), Is.EqualTo(0f));
    }

    [Test]
    public void InstancesSelectAndConcatKeepFieldsAligned()
    {
        using var scope = NewDisposeScope();
        var inst = new Instances(40, 60, B(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5),
            classes: tensor(new long[] { 7, 8, 9 }), scores: tensor(new[] { 0.1f, 0.2f, 0.3f }));
        var picked = inst.Select(tensor(new long[] { 2, 0 }));
        Assert.That(picked.Count, Is.EqualTo(2));
        Assert.That(picked.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 9, 7 }));
        Assert.That(picked.Boxes.Tensor[0].data<float>().ToArray(), Is.EqualTo(new[] { 4f, 4f, 5f, 5f }));
        var masked = inst.Select(tensor(new[] { false, true, false }));
        Assert.That(masked.Scores!.data<float>().ToArray(), Is.EqualTo(new[] { 0.2f }));
        var joined = Instances.Concat(new[] { picked, masked });
        Assert.That(joined.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 9, 7, 8 }));
        Assert.That(joined.Masks, Is.Null);
        Assert.Throws<ArgumentException>(() => _ = new Instances(40, 60, B(0, 0, 1, 1), classes: tensor(new long[] { 1, 2 })));
    }
}
