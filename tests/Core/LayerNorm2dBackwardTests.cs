using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// LayerNorm2d's closed-form backward (<c>LayerNorm2dFunction</c>) against central finite differences in float64, and
/// against autograd over the module's ops (the path before it, VIMDENSE_FUSED_LAYERNORM2D=0) in float32.
/// </summary>
[NonParallelizable] // switches LayerNorm2d.ClosedFormBackward, process-wide
public class LayerNorm2dBackwardTests
{
    private static (LayerNorm2d Norm, Tensor Weight, Tensor Bias) Norm(long channels, ScalarType type, Generator generator)
    {
        var norm = new LayerNorm2d(channels);
        var parameters = norm.parameters().ToList();
        using (no_grad())
        {
            parameters[0].copy_(rand(new long[] { channels }, generator: generator) + 0.5);
            parameters[1].copy_(randn(new long[] { channels }, generator: generator));
        }
        norm.to(type);
        parameters = norm.parameters().ToList();
        return (norm, parameters[0], parameters[1]);
    }

    [Test]
    public void GradientsMatchCentralDifferencesInFloat64()
    {
        using var scope = NewDisposeScope();
        Assert.That(LayerNorm2d.ClosedFormBackward, Is.True, "the default path is the closed form");
        var generator = new Generator(11);
        var (norm, weight, bias) = Norm(5, ScalarType.Float64, generator);
        var x = randn(new long[] { 2, 5, 3, 2 }, dtype: ScalarType.Float64, generator: generator).requires_grad_();
        var cotangent = randn(new long[] { 2, 5, 3, 2 }, dtype: ScalarType.Float64, generator: generator);
        (norm.call(x) * cotangent).sum().backward();

        double Loss()
        {
            using var inner = NewDisposeScope();
            using var noGrad = no_grad();
            return (norm.call(x) * cotangent).sum().item<double>();
        }
        CentralDifferences.Check(Loss, x, x.grad!.clone(), "dx");
        CentralDifferences.Check(Loss, weight, weight.grad!.clone(), "dw");
        CentralDifferences.Check(Loss, bias, bias.grad!.clone(), "db");
    }

    [Test]
    public void SameForwardAndGradientsWithinRoundingOfAutogradInFloat32()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(12);
        var (norm, weight, bias) = Norm(64, ScalarType.Float32, generator);
        var input = randn(new long[] { 2, 64, 9, 7 }, generator: generator) * 3 + 1;
        var cotangent = randn(new long[] { 2, 64, 9, 7 }, generator: generator);

        (Tensor Output, Tensor Dx, Tensor Dw, Tensor Db) Run(bool closedForm)
        {
            bool before = LayerNorm2d.ClosedFormBackward;
            LayerNorm2d.ClosedFormBackward = closedForm;
            try
            {
                weight.grad?.zero_();
                bias.grad?.zero_();
                var x = input.clone().requires_grad_();
                var output = norm.call(x);
                (output * cotangent).sum().backward();
                return (output.detach(), x.grad!.clone(), weight.grad!.clone(), bias.grad!.clone());
            }
            finally
            {
                LayerNorm2d.ClosedFormBackward = before;
            }
        }
        var closed = Run(true);
        var autograd = Run(false);
        Assert.That(TensorBits.Same(closed.Output, autograd.Output), "the forward runs the same ops");
        Assert.That(closed.Dx.allclose(autograd.Dx, rtol: 1e-4, atol: 1e-5), $"dx differs by {(closed.Dx - autograd.Dx).abs().max().item<float>()}");
        Assert.That(closed.Dw.allclose(autograd.Dw, rtol: 1e-4, atol: 1e-4), $"dw differs by {(closed.Dw - autograd.Dw).abs().max().item<float>()}");
        Assert.That(closed.Db.allclose(autograd.Db, rtol: 1e-5, atol: 1e-5), $"db differs by {(closed.Db - autograd.Db).abs().max().item<float>()}");
        // The closed form's dx sums to zero over the channels at every position (a shift of x changes nothing).
        Assert.That(closed.Dx.sum(1).abs().max().item<float>(), Is.LessThan(1e-4f));
    }
}
