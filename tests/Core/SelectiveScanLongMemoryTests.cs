using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// The native kernel on long-memory states, against the reference in float64: Δ around 0.001 (the
/// low end of Mamba's initial Δ range) keeps a state for about 1/(Δ·|A|) steps, thousands here, so a
/// decay exp(Δ·A) off by the same tiny amount at every step adds up over the whole sequence (the
/// other scan tests draw Δ around 0.2, where a state forgets within a few steps).
/// </summary>
public class SelectiveScanLongMemoryTests
{
    // |A| scale (1: Mamba's initial A = -1..-16; 0.05: slower decays still), reverse
    [TestCase(1.0, false)]
    [TestCase(0.05, false)]
    [TestCase(0.05, true)]
    public void NativeForwardStaysWithinToleranceOnLongMemoryStates(double aScale, bool reverse)
    {
        using var scope = NewDisposeScope();
        const long channels = 16, length = 4096, state = 16;
        var gen = new Generator(5);
        Tensor R(params long[] shape) => randn(shape, dtype: ScalarType.Float64, generator: gen);
        // Δ = softplus(raw) = 0.001·e^(0.3·noise): raw = log(expm1(Δ)).
        var deltaRaw = log(expm1(0.001 * exp(0.3 * R(1, channels, length))));
        var A = (-aScale * arange(1, state + 1, dtype: ScalarType.Float64)).unsqueeze(0).expand(channels, state).contiguous();
        var u = R(1, channels, length);
        var B = R(1, state, length);
        var C = R(1, state, length);
        var z = R(1, channels, length) * 2;

        var expected = reverse
            ? SelectiveScanReference.Forward(u.flip(-1), deltaRaw.flip(-1), A, B.flip(-1), C.flip(-1), null, z.flip(-1),
                null, deltaSoftplus: true).flip(-1)
            : SelectiveScanReference.Forward(u, deltaRaw, A, B, C, null, z, null, deltaSoftplus: true);
        Tensor F(Tensor t) => t.to_type(ScalarType.Float32);
        using var _ = no_grad();
        var actual = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, F(u), F(deltaRaw), F(A), F(B), F(C), null, F(z),
            null, deltaSoftplus: true, reverse: reverse);

        Assert.That(SelectiveScanTestInputs.RelativeError(actual, expected), Is.LessThanOrEqualTo(1e-5));
    }
}
