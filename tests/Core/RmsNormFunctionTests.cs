using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// RMSNorm's training path (<c>RmsNormFunction</c>, its own backward) against central finite differences in float64, against
/// autograd over the defining ops in float32, and for what it keeps for backward.
/// </summary>
public class RmsNormFunctionTests
{
    /// <summary>y = x · (mean(x²) + eps)^(−½) · w with autograd over every op: the definition the function must differentiate.</summary>
    private static Tensor Defined(Tensor x, Tensor w, double eps) => x * (x.square().mean([-1], keepdim: true) + eps).rsqrt() * w;

    [Test]
    public void GradientsMatchCentralDifferencesInFloat64()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        using var norm = new RmsNorm(6, eps: 1e-5);
        using (no_grad()) norm.parameters().Single().copy_(rand(new long[] { 6 }, generator: generator) + 0.5);
        norm.to(ScalarType.Float64);
        var weight = norm.parameters().Single();
        var x = randn(new long[] { 2, 3, 6 }, dtype: ScalarType.Float64, generator: generator).requires_grad_();
        var cotangent = randn(new long[] { 2, 3, 6 }, dtype: ScalarType.Float64, generator: generator);
        (norm.forward(x) * cotangent).sum().backward();

        double Loss()
        {
            using var inner = NewDisposeScope();
            using var noGrad = no_grad();
            return (norm.forward(x) * cotangent).sum().item<double>();
        }
        CentralDifferences.Check(Loss, x, x.grad!.clone(), "dx");
        CentralDifferences.Check(Loss, weight, weight.grad!.clone(), "dw");
    }

    [Test]
    public void MatchesAutogradOverTheDefinitionInFloat32()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(4);
        var x = randn(new long[] { 2, 17, 8 }, generator: generator) * 3;
        var w = rand(new long[] { 8 }, generator: generator) + 0.5f;
        var cotangent = randn(new long[] { 2, 17, 8 }, generator: generator);

        var xd = x.clone().requires_grad_();
        var wd = w.clone().requires_grad_();
        var yd = Defined(xd, wd, 1e-5);
        (yd * cotangent).sum().backward();

        using var norm = new RmsNorm(8, eps: 1e-5);
        var weight = norm.parameters().Single();
        using (no_grad()) weight.copy_(w);
        var xf = x.clone().requires_grad_();
        var y = norm.forward(xf);
        (y * cotangent).sum().backward();

        static double Rel(Tensor a, Tensor b) => (a - b).norm().item<float>() / b.norm().item<float>();
        Assert.That(Rel(y.detach(), yd.detach()), Is.LessThan(1e-6), "output");
        Assert.That(Rel(xf.grad!, xd.grad!), Is.LessThan(1e-5), "dx");
        Assert.That(Rel(weight.grad!, wd.grad!), Is.LessThan(1e-5), "dw");
        using (no_grad()) Assert.That(norm.forward(x).eq(y.detach()).all().item<bool>(), Is.True, "the training path computes what inference computes");
    }

    [Test]
    public void HalfInputComputesInFloat32AndReturnsItsOwnType()
    {
        using var scope = NewDisposeScope();
        using var norm = new RmsNorm(8);
        var x = randn(new long[] { 3, 8 }, generator: new Generator(5)).to_type(ScalarType.BFloat16).requires_grad_();
        var y = norm.forward(x);
        Assert.That(y.dtype, Is.EqualTo(ScalarType.BFloat16));
        y.to_type(ScalarType.Float32).sum().backward();
        Assert.That(x.grad!.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(norm.parameters().Single().grad!.dtype, Is.EqualTo(ScalarType.Float32));
        var expected = Defined(x.detach().to_type(ScalarType.Float32), ones(8), 1e-5);
        Assert.That((y.detach().to_type(ScalarType.Float32) - expected).abs().max().item<float>(), Is.LessThan(2e-2));
    }

    /// <summary>Autograd over the definition keeps x and x·r (plus the (rows, 1) scale) for backward; the function keeps x and
    /// the scale: one (rows, dim) float32 tensor less, measured as glibc's bytes in use after the forward.</summary>
    [Test]
    public void KeepsOneActivationLessThanAutogradOverTheDefinition()
    {
        long rows = 4096, dim = 64, activationBytes = rows * dim * sizeof(float);
        using var norm = new RmsNorm(dim);
        var weight = norm.parameters().Single();
        using var input = randn(new long[] { rows, dim }, generator: new Generator(6));
        long Held(Func<Tensor, Tensor> forward)
        {
            using var x = (input * 1).requires_grad_();
            return GraphMemory.HeldForBackward(() => forward(x).sum());
        }
        long defined = Held(x => Defined(x, weight, 1e-5)), function = Held(norm.forward);
        TestContext.Out.WriteLine($"held for backward: autograd over the definition {defined / 1024} KiB, function {function / 1024} KiB, one activation {activationBytes / 1024} KiB");
        Assert.That(defined - function, Is.GreaterThanOrEqualTo(activationBytes * 95 / 100));
    }
}
