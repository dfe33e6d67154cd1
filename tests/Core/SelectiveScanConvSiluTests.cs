using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>The fused conv1d + bias + SiLU (native float32) against the definition written as explicit
/// shifted sums in float64, forward and gradients, both directions.</summary>
public class SelectiveScanConvSiluTests
{
    /// <summary>silu(b[c] + Σ_j w[c,j]·x[c, t + offset(j)]), offset = j−(k−1) causal, (k−1)−j anti-causal, zero outside.</summary>
    private static Tensor Definition(Tensor x, Tensor weight, Tensor? bias, bool reverse)
    {
        long length = x.shape[2], k = weight.shape[2];
        var s = bias is null ? zeros_like(x) : bias.reshape(1, -1, 1).expand_as(x).clone();
        for (long j = 0; j < k; j++)
        {
            long offset = reverse ? k - 1 - j : j - (k - 1);
            var shifted = zeros_like(x);
            long n = length - Math.Abs(offset);
            if (n > 0)
            {
                if (offset < 0) shifted = shifted.index_put_(x.narrow(2, 0, n), TensorIndex.Ellipsis, TensorIndex.Slice(-offset, length));
                else shifted = shifted.index_put_(x.narrow(2, offset, n), TensorIndex.Ellipsis, TensorIndex.Slice(0, n));
            }
            s = s + weight.select(2, j).reshape(1, -1, 1) * shifted;
        }
        return nn.functional.silu(s);
    }

    // batch, channels, L, k, bias, reverse
    private static readonly object[] Cases =
    {
        new object[] { 1L, 3L, 1L, 4L, true, false },
        new object[] { 1L, 3L, 1L, 4L, true, true },
        new object[] { 2L, 5L, 3L, 4L, true, true },
        new object[] { 2L, 6L, 37L, 4L, true, false },
        new object[] { 2L, 6L, 37L, 4L, true, true },
        new object[] { 1L, 4L, 70L, 3L, false, true },
        new object[] { 3L, 2L, 17L, 1L, true, false },
    };

    [TestCaseSource(nameof(Cases))]
    public void NativeMatchesDefinitionForwardAndGradients(long batch, long channels, long length, long k, bool withBias,
        bool reverse)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(length * 7 + k));
        // x is a channel slice of a wider tensor, as in the mixer (in_proj's output holds x and z).
        var wide = randn(new[] { batch, 2 * channels, length }, dtype: ScalarType.Float64, generator: gen);
        var weight = randn(new[] { channels, 1, k }, dtype: ScalarType.Float64, generator: gen) * 0.5;
        var bias = withBias ? randn(new[] { channels }, dtype: ScalarType.Float64, generator: gen) * 0.3 : null;
        var gradWeights = randn(new[] { batch, channels, length }, dtype: ScalarType.Float64, generator: gen);

        Tensor Leaf(Tensor t, ScalarType type) => t.detach().to_type(type).requires_grad_(true);
        var (w64, x64w, b64) = (Leaf(weight, ScalarType.Float64), Leaf(wide, ScalarType.Float64), bias is null ? null : Leaf(bias, ScalarType.Float64));
        var (w32, x32w, b32) = (Leaf(weight, ScalarType.Float32), Leaf(wide, ScalarType.Float32), bias is null ? null : Leaf(bias, ScalarType.Float32));

        var expected = Definition(x64w.narrow(1, 0, channels), w64, b64, reverse);
        (expected * gradWeights).sum().backward();
        var actual = ConvSilu.Apply(x32w.narrow(1, 0, channels), w32, b32, reverse);
        (actual * gradWeights.to_type(ScalarType.Float32)).sum().backward();

        static double Rel(Tensor a, Tensor e)
        {
            double den = e.norm().item<double>();
            double num = (a.to_type(ScalarType.Float64) - e).norm().item<double>();
            return den == 0 ? num : num / den;
        }
        Assert.That(actual.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(actual.is_contiguous(), Is.True);
        Assert.That(Rel(actual.detach(), expected.detach()), Is.LessThan(1e-6), "forward");
        Assert.That(Rel(x32w.grad!, x64w.grad!), Is.LessThan(1e-5), "dx");
        Assert.That(Rel(w32.grad!, w64.grad!), Is.LessThan(1e-5), "dweight");
        if (b32 is not null) Assert.That(Rel(b32.grad!, b64!.grad!), Is.LessThan(1e-5), "dbias");

        // The float64 fallback (TorchSharp ops) agrees with the definition too.
        using (no_grad())
        {
            var fallback = ConvSilu.Apply(wide.narrow(1, 0, channels), weight, bias, reverse);
            Assert.That(Rel(fallback, expected.detach()), Is.LessThan(1e-12), "tensor-op fallback");
        }
    }

    [Test]
    public void DirectionsDifferAndBadWeightsAreRejected()
    {
        using var scope = NewDisposeScope();
        var x = randn(1, 2, 9);
        var w = randn(2, 1, 4);
        var causal = ConvSilu.Apply(x, w, null, reverse: false);
        var anti = ConvSilu.Apply(x, w, null, reverse: true);
        Assert.That((causal - anti).abs().max().item<float>(), Is.GreaterThan(1e-3f));
        var e = Assert.Throws<ArgumentException>(() => ConvSilu.Apply(x, randn(3, 1, 4), null, false));
        Assert.That(e!.Message, Does.Contain("weight").And.Contain("channels=2"));
    }
}
