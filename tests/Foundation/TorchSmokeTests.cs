using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Tests.Foundation;

public class TorchSmokeTests
{
    [Test]
    public void ConvForwardAndBackwardMatchHandComputedValues()
    {
        using var scope = NewDisposeScope();
        // 1x1x3x3 input of ones, 2x2 kernel of ones: every output is 4; d(sum)/d(input) counts how
        // many windows cover each pixel (corners 1, edges 2, centre 4).
        var x = ones(1, 1, 3, 3, requires_grad: true);
        var w = ones(1, 1, 2, 2, requires_grad: true);
        var y = nn.functional.conv2d(x, w);
        Assert.That(y.shape, Is.EqualTo(new long[] { 1, 1, 2, 2 }));
        Assert.That(y.sum().item<float>(), Is.EqualTo(16f));
        y.sum().backward();
        var expected = new float[] { 1, 2, 1, 2, 4, 2, 1, 2, 1 };
        Assert.That(x.grad!.flatten().data<float>().ToArray(), Is.EqualTo(expected));
        Assert.That(w.grad!.flatten().data<float>().ToArray(), Is.EqualTo(new float[] { 4, 4, 4, 4 }));
    }
}
