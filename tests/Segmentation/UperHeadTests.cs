using NUnit.Framework;
using TorchSharp;
using Vim.Segmentation.Heads;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

public class UperHeadTests
{
    private static Tensor[] Pyramid(long batch, long channels, long height, long width) =>
        new[] { 4, 8, 16, 32 }.Select(s => randn(batch, channels, height / s, width / s)).ToArray();

    [TestCase(512, 512)]
    [TestCase(256, 384)]
    [TestCase(224, 224)]
    [TestCase(160, 96)]
    public void LogitsAreAtStrideFourForAnyInputSize(int height, int width)
    {
        using var scope = NewDisposeScope();
        using var head = new UperHead([32, 32, 32, 32], channels: 16, numClasses: 5);
        head.eval();
        var logits = head.forward(Pyramid(2, 32, height, width));
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, 5, height / 4, width / 4 }));
    }

    [Test]
    public void ParameterCountsMatchTheOfficialVimTinyHeads()
    {
        // Hand count for in_channels [192]*4, channels 192, 150 classes (BatchNorm: weight + bias):
        // PPM 4 × (192·192 + 384) = 148,992; bottleneck (960·192·9 + 384) = 1,659,264;
        // laterals 3 × (192·192 + 384) = 111,744; FPN convs 3 × (192·192·9 + 384) = 996,480;
        // fusion (768·192·9 + 384) = 1,327,488; classifier 192·150 + 150 = 28,950 → 4,272,918.
        using var head = new UperHead([192, 192, 192, 192], channels: 192, numClasses: 150);
        Assert.That(head.parameters().Sum(p => p.numel()), Is.EqualTo(4_272_918));
        // Auxiliary FCN: 192·256·9 + 512 = 442,880; classifier 256·150 + 150 = 38,550 → 481,430.
        using var aux = new FcnHead(192, 256, 150);
        Assert.That(aux.parameters().Sum(p => p.numel()), Is.EqualTo(481_430));
    }

    [Test]
    public void ParameterNamesFollowMmseg()
    {
        using var head = new UperHead([8, 8, 8, 8], channels: 4, numClasses: 3);
        var keys = head.state_dict().Keys.ToHashSet();
        Assert.That(keys, Does.Contain("psp_modules.0.1.conv.weight"));
        Assert.That(keys, Does.Contain("psp_modules.3.1.bn.running_var"));
        Assert.That(keys, Does.Contain("bottleneck.conv.weight"));
        Assert.That(keys, Does.Contain("lateral_convs.2.bn.weight"));
        Assert.That(keys, Does.Contain("fpn_convs.0.conv.weight"));
        Assert.That(keys, Does.Contain("fpn_bottleneck.bn.bias"));
        Assert.That(keys, Does.Contain("conv_seg.bias"));
        using var aux = new FcnHead(8, 4, 3);
        Assert.That(aux.state_dict().Keys, Does.Contain("convs.0.conv.weight").And.Contain("conv_seg.weight"));
    }

    [Test]
    public void EveryParameterReceivesAGradient()
    {
        using var scope = NewDisposeScope();
        using var head = new UperHead([8, 8, 8, 8], channels: 4, numClasses: 3);
        head.train();
        head.forward(Pyramid(2, 8, 64, 64)).pow(2).mean().backward();
        foreach (var (name, p) in head.named_parameters())
        {
            Assert.That(p.grad, Is.Not.Null, name);
            Assert.That(p.grad!.abs().sum().item<float>(), Is.GreaterThan(0), name);
        }
    }
}
