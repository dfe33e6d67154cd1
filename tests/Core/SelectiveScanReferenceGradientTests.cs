using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>The reference (the oracle for the kernels) checked against central finite differences
/// in float64, and its forward against a hand-computed one-state case.</summary>
public class SelectiveScanReferenceGradientTests
{
    [TestCase(true, true, true, true)]
    [TestCase(false, false, false, false)]
    [TestCase(true, false, true, true)]
    public void ReferenceGradientsMatchFiniteDifferences(bool withD, bool withZ, bool withBias, bool softplus)
    {
        using var scope = NewDisposeScope();
        var x = SelectiveScanTestInputs.Create(2, 3, 5, 4, withD, withZ, withBias, softplus, ScalarType.Float64, seed: 17)
            .Leaves();
        var w = randn(new long[] { 2, 3, 5 }, dtype: ScalarType.Float64, generator: new Generator(3));
        Tensor Loss() => (SelectiveScanReference.Forward(x.u, x.delta, x.A, x.B, x.C, x.D, x.z, x.deltaBias, x.Softplus) * w).sum();
        Loss().backward();
        const double eps = 1e-6;
        foreach (var (name, t) in x.Present())
        {
            var analytic = t.grad!.clone();
            var numeric = zeros_like(t);
            using (no_grad())
            {
                var flat = t.view(-1);
                var numFlat = numeric.view(-1);
                for (long i = 0; i < flat.shape[0]; i++)
                {
                    double orig = flat[i].item<double>();
                    flat[i] = orig + eps;
                    double plus = Loss().item<double>();
                    flat[i] = orig - eps;
                    double minus = Loss().item<double>();
                    flat[i] = orig;
                    numFlat[i] = (plus - minus) / (2 * eps);
                }
            }
            Assert.That(SelectiveScanTestInputs.RelativeError(analytic, numeric), Is.LessThanOrEqualTo(1e-7), $"d{name}");
        }
    }

    [Test]
    public void OneStateForwardMatchesHandComputation()
    {
        using var scope = NewDisposeScope();
        // batch 1, one channel, L = 2, N = 1: h1 = Δ1·B1·u1, h2 = e^{Δ2·A}·h1 + Δ2·B2·u2, y = h·C + D·u,
        // gated by silu(z). Δ = softplus(delta + bias).
        double[] u = { 1.5, -0.5 }, delta = { 0.2, -0.3 }, b = { 0.7, 1.1 }, c = { -1.2, 0.4 }, z = { 0.3, -2.0 };
        double a = -0.8, dskip = 0.25, bias = 0.1;
        double Sp(double v) => Math.Log(1 + Math.Exp(v));
        double Silu(double v) => v / (1 + Math.Exp(-v));
        double d1 = Sp(delta[0] + bias), d2 = Sp(delta[1] + bias);
        double h1 = d1 * b[0] * u[0];
        double h2 = Math.Exp(d2 * a) * h1 + d2 * b[1] * u[1];
        double[] expected = { (h1 * c[0] + dskip * u[0]) * Silu(z[0]), (h2 * c[1] + dskip * u[1]) * Silu(z[1]) };
        Tensor T(double[] v, params long[] shape) => tensor(v, ScalarType.Float64).reshape(shape);
        var y = SelectiveScanReference.Forward(T(u, 1, 1, 2), T(delta, 1, 1, 2), T(new[] { a }, 1, 1), T(b, 1, 1, 2),
            T(c, 1, 1, 2), T(new[] { dskip }, 1), T(z, 1, 1, 2), T(new[] { bias }, 1), true);
        var got = y.reshape(-1).data<double>().ToArray();
        Assert.That(got[0], Is.EqualTo(expected[0]).Within(1e-12));
        Assert.That(got[1], Is.EqualTo(expected[1]).Within(1e-12));
        // The native kernel on the same numbers in float32.
        Tensor F(double[] v, params long[] shape) => T(v, shape).to_type(ScalarType.Float32);
        var yn = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, F(u, 1, 1, 2), F(delta, 1, 1, 2), F(new[] { a }, 1, 1),
            F(b, 1, 1, 2), F(c, 1, 1, 2), F(new[] { dskip }, 1), F(z, 1, 1, 2), F(new[] { bias }, 1), true);
        var gotN = yn.reshape(-1).data<float>().ToArray();
        Assert.That(gotN[0], Is.EqualTo(expected[0]).Within(1e-6));
        Assert.That(gotN[1], Is.EqualTo(expected[1]).Within(1e-6));
    }
}
