using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// The native kernel (forward and gradients) on long-memory states, against the reference in
/// float64: Δ around 0.001 (the low end of Mamba's initial Δ range) keeps a state for about
/// 1/(Δ·|A|) steps, thousands here, so a decay exp(Δ·A) off by the same tiny amount at every step
/// adds up over the whole sequence (the other scan tests draw Δ around 0.2, where a state forgets
/// within a few steps).
/// </summary>
public class SelectiveScanLongMemoryTests
{
    // |A| scale (1: Mamba's initial A = -1..-16; 0.05: slower decays still), reverse
    [TestCase(1.0, false)]
    [TestCase(0.05, false)]
    [TestCase(0.05, true)]
    public void NativeStaysWithinToleranceOnLongMemoryStates(double aScale, bool reverse)
    {
        using var scope = NewDisposeScope();
        const long channels = 16, length = 4096, state = 16;
        var gen = new Generator(5);
        Tensor R(params long[] shape) => randn(shape, dtype: ScalarType.Float64, generator: gen);
        // Δ = softplus(raw) = 0.001·e^(0.3·noise): raw = log(expm1(Δ)).
        var deltaRaw = log(expm1(0.001 * exp(0.3 * R(1, channels, length))));
        var A = (-aScale * arange(1, state + 1, dtype: ScalarType.Float64)).unsqueeze(0).expand(channels, state).contiguous();
        var inputs = new[] { R(1, channels, length), deltaRaw, A, R(1, state, length), R(1, state, length), R(1, channels, length) * 2 };
        var names = new[] { "u", "delta", "A", "B", "C", "z" };
        var weights = R(1, channels, length);

        var reference = inputs.Select(t => t.detach().clone().requires_grad_(true)).ToArray();
        Tensor Flip(Tensor t) => reverse ? t.flip(-1) : t;
        var expected = Flip(SelectiveScanReference.Forward(Flip(reference[0]), Flip(reference[1]), reference[2],
            Flip(reference[3]), Flip(reference[4]), null, Flip(reference[5]), null, deltaSoftplus: true));
        (expected * weights).sum().backward();

        var native = inputs.Select(t => t.to_type(ScalarType.Float32).detach().requires_grad_(true)).ToArray();
        var actual = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, native[0], native[1], native[2], native[3],
            native[4], null, native[5], null, deltaSoftplus: true, reverse: reverse);
        (actual * weights.to_type(ScalarType.Float32)).sum().backward();

        Assert.That(SelectiveScanTestInputs.RelativeError(actual.detach(), expected.detach()), Is.LessThanOrEqualTo(1e-5), "forward");
        for (int i = 0; i < names.Length; i++)
            Assert.That(SelectiveScanTestInputs.RelativeError(native[i].grad!, reference[i].grad!), Is.LessThanOrEqualTo(1e-4),
                $"d{names[i]}");
    }
}
