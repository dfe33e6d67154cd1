using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class ModelDeitTests
{
    [Test]
    public void ScaledDotProductAndExplicitAttentionAgree()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionTransformer(ModelTestConfigs.TinyDeit, seed: 3);
        model.eval();
        var images = randn(2, 3, 48, 32);
        model.Attention = AttentionKind.ScaledDotProduct;
        var sdpa = model.ForwardTokens(images);
        model.Attention = AttentionKind.Explicit;
        var explicitOut = model.ForwardTokens(images);
        Assert.That(sdpa.shape, Is.EqualTo(new long[] { 2, 7, 32 }));
        Assert.That((sdpa - explicitOut).abs().max().item<float>(), Is.LessThan(1e-5f));
    }

    [Test]
    public void ExplicitAttentionMatchesAHandComputedSingleHeadCase()
    {
        // One head, width 2, qkv = identity-like projection: q = k = v = x, proj = identity.
        using var scope = NewDisposeScope();
        using var attention = new SelfAttention(2, 1, AttentionKind.Explicit);
        var p = attention.named_parameters().ToDictionary(n => n.name, n => (Tensor)n.parameter);
        using (no_grad())
        {
            p["qkv.weight"].copy_(cat(new[] { eye(2), eye(2), eye(2) }, 0));
            p["qkv.bias"].zero_();
            p["proj.weight"].copy_(eye(2));
            p["proj.bias"].zero_();
        }
        var x = tensor(new float[] { 1, 0, 0, 1 }).reshape(1, 2, 2);
        // Scores x·xᵀ/√2 = [[1/√2, 0], [0, 1/√2]] → row softmax weights w = e^{1/√2}/(e^{1/√2}+1).
        double w = Math.Exp(1 / Math.Sqrt(2)) / (Math.Exp(1 / Math.Sqrt(2)) + 1);
        var expected = new[] { w, 1 - w, 1 - w, w };
        foreach (var kind in new[] { AttentionKind.Explicit, AttentionKind.ScaledDotProduct })
        {
            attention.Kind = kind;
            var actual = attention.forward(x).flatten().data<float>().ToArray();
            for (int i = 0; i < 4; i++) Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-6), $"{kind} element {i}");
        }
    }

    [Test]
    public void GradientsReachEveryDeitParameter()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionTransformer(ModelTestConfigs.TinyDeit, seed: 9);
        model.train();
        model.forward(randn(2, 3, 32, 48)).square().sum().backward();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var grad = parameter.grad;
            Assert.That(grad, Is.Not.Null, name);
            Assert.That(grad!.isfinite().all().item<bool>() && grad.abs().sum().item<float>() > 0, Is.True, name);
        }
    }
}
