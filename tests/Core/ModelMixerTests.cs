using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class ModelMixerTests
{
    private static BiMambaMixer SmallMixer(long seed)
    {
        var mixer = new BiMambaMixer(dim: 8, stateSize: 4, convKernel: 4, expand: 2, dtRank: 2);
        mixer.ResetParameters(new Generator((ulong)seed), depth: 2);
        // Give D/D_b and dt_proj_b.bias non-trivial values so a swapped or dropped term shows.
        using (no_grad())
        {
            var p = Params(mixer);
            p["D"].copy_(linspace(0.5, 1.5, 16));
            p["D_b"].copy_(linspace(-1.0, 0.3, 16));
            p["dt_proj_b.bias"].copy_(linspace(-2.0, 1.0, 16));
        }
        mixer.to(ScalarType.Float64);
        return mixer;
    }

    private static Dictionary<string, Tensor> Params(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    /// <summary>Depthwise conv by explicit shifts: u[c,t] = b[c] + Σ_k w[c,k]·x[c, t + offset(k)], zero outside.</summary>
    private static Tensor ShiftConv(Tensor x, Tensor weight, Tensor bias, bool causal)
    {
        long length = x.shape[2];
        int k = (int)weight.shape[2];
        var result = bias.reshape(1, -1, 1).expand_as(x).clone();
        for (int j = 0; j < k; j++)
        {
            // Causal: tap j looks back (k−1−j) steps. Anti-causal (backward branch in original order):
            // tap j looks ahead (k−1−j) steps, i.e. the causal filter run on the reversed sequence.
            int shift = k - 1 - j;
            var shifted = zeros_like(x);
            if (shift < length)
            {
                if (causal) shifted.narrow(2, shift, length - shift).copy_(x.narrow(2, 0, length - shift));
                else shifted.narrow(2, 0, length - shift).copy_(x.narrow(2, shift, length - shift));
            }
            result = result + weight.select(2, j).reshape(1, -1, 1) * shifted;
        }
        return result;
    }

    [Test]
    public void MixerEqualsStraightforwardRecomputationInFloat64()
    {
        using var scope = NewDisposeScope();
        using var mixer = SmallMixer(3);
        var p = Params(mixer);
        var h = randn(new long[] { 2, 7, 8 }, dtype: ScalarType.Float64, generator: new Generator(11));

        var actual = mixer.forward(h);

        const long inner = 16, rank = 2, state = 4;
        var xz = h.matmul(p["in_proj.weight"].t()).transpose(1, 2);
        var x = xz.narrow(1, 0, inner);
        var z = xz.narrow(1, inner, inner);

        Tensor Branch(string suffix, bool causal)
        {
            var u = nn.functional.silu(ShiftConv(x, p[$"conv1d{suffix}.weight"], p[$"conv1d{suffix}.bias"], causal));
            var xDbl = u.transpose(1, 2).matmul(p[$"x_proj{suffix}.weight"].t());
            var delta = xDbl.narrow(2, 0, rank).matmul(p[$"dt_proj{suffix}.weight"].t()).transpose(1, 2);
            var b = xDbl.narrow(2, rank, state).transpose(1, 2);
            var c = xDbl.narrow(2, rank + state, state).transpose(1, 2);
            var a = -p[suffix == "" ? "A_log" : "A_b_log"].exp();
            var d = p[suffix == "" ? "D" : "D_b"];
            if (causal)
                return SelectiveScanReference.Forward(u, delta, a, b, c, d, z, p[$"dt_proj{suffix}.bias"], true);
            // The backward branch scans from the last token to the first: run the scan on reversed time.
            var y = SelectiveScanReference.Forward(u.flip(2), delta.flip(2), a, b.flip(2), c.flip(2), d, z.flip(2), p[$"dt_proj{suffix}.bias"], true);
            return y.flip(2);
        }

        var combined = (Branch("", causal: true) + Branch("_b", causal: false)) / 2;
        var expected = combined.transpose(1, 2).matmul(p["out_proj.weight"].t());

        Assert.That(actual.dtype, Is.EqualTo(ScalarType.Float64));
        Assert.That((actual - expected).abs().max().item<double>(), Is.LessThan(1e-12));
        Assert.That(expected.abs().max().item<double>(), Is.GreaterThan(1e-3), "the comparison must not be trivially zero");
    }

    [Test]
    public void MixerWithTiedDirectionsIsEquivariantToSequenceReversal()
    {
        // With the backward branch's parameters equal to the forward ones, out(h) = (F(h) + flip F(flip h))/2,
        // so out(flip h) = flip out(h). Forgetting a flip (input, z, or the output flip-back) breaks this.
        using var scope = NewDisposeScope();
        using var mixer = SmallMixer(5);
        var p = Params(mixer);
        using (no_grad())
        {
            foreach (var name in new[] { "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias" })
                p[name.Replace(".", "_b.")].copy_(p[name]);
            p["A_b_log"].copy_(p["A_log"]);
            p["D_b"].copy_(p["D"]);
        }
        var h = randn(new long[] { 1, 9, 8 }, dtype: ScalarType.Float64, generator: new Generator(2));
        var forwardOrder = mixer.forward(h);
        var reversed = mixer.forward(h.flip(1));
        Assert.That((reversed - forwardOrder.flip(1)).abs().max().item<double>(), Is.LessThan(1e-12));
        // And the mixer is genuinely direction-dependent once the branches differ.
        using (no_grad()) p["D_b"].add_(1.0);
        var untied = mixer.forward(h.flip(1)) - mixer.forward(h).flip(1);
        Assert.That(untied.abs().max().item<double>(), Is.GreaterThan(1e-6));
    }

    [Test]
    public void MixerOnNativeFloat32KernelsMatchesFloat64ReferenceWithGradients()
    {
        // float32 runs the native scan (the backward branch through its reverse mode, the anti-causal conv),
        // float64 the tensor-op reference: outputs and every gradient must agree. L = 70 spans two scan chunks.
        using var scope = NewDisposeScope();
        using var mixer64 = SmallMixer(4);
        using var mixer32 = SmallMixer(4);
        mixer32.to(ScalarType.Float32);
        var h64 = randn(new long[] { 2, 70, 8 }, dtype: ScalarType.Float64, generator: new Generator(8)).requires_grad_(true);
        var h32 = h64.detach().to_type(ScalarType.Float32).requires_grad_(true);
        var weights = randn(new long[] { 2, 70, 8 }, dtype: ScalarType.Float64, generator: new Generator(9));
        Assert.That(SelectiveScan.Choose(h32, h32, h32, h32, h32), Is.EqualTo(SelectiveScanBackend.NativeCpu));

        var y64 = mixer64.forward(h64);
        var y32 = mixer32.forward(h32);
        (y64 * weights).sum().backward();
        (y32 * weights.to_type(ScalarType.Float32)).sum().backward();

        static double Rel(Tensor actual, Tensor expected) =>
            (actual.to_type(ScalarType.Float64) - expected).norm().item<double>() / expected.norm().item<double>();
        Assert.That(Rel(y32.detach(), y64.detach()), Is.LessThan(1e-5), "output");
        Assert.That(Rel(h32.grad!, h64.grad!), Is.LessThan(1e-4), "d hidden");
        var p64 = Params(mixer64);
        foreach (var (name, p32) in Params(mixer32))
        {
            Assert.That(p32.grad, Is.Not.Null, $"d{name} missing");
            Assert.That(Rel(p32.grad!, p64[name].grad!), Is.LessThan(1e-4), $"d{name}");
        }
    }

    [Test]
    public void MixerInitialisationFollowsTheOfficialRecipe()
    {
        using var scope = NewDisposeScope();
        using var mixer = new BiMambaMixer(dim: 32, stateSize: 16, dtRank: 2);
        mixer.ResetParameters(new Generator(1), depth: 24);
        var p = Params(mixer);
        var expectedA = log(arange(1, 17, dtype: ScalarType.Float32)).expand(64, 16);
        Assert.That(p["A_log"].allclose(expectedA), Is.True);
        Assert.That(p["A_b_log"].allclose(expectedA), Is.True);
        Assert.That(p["D"].eq(1).all().item<bool>() && p["D_b"].eq(1).all().item<bool>(), Is.True);
        Assert.That(p["dt_proj_b.bias"].eq(0).all().item<bool>(), Is.True, "the official _init_weights zeroes dt_proj_b.bias");
        // softplus(bias) recovers dt ∈ [1e-3, 1e-1].
        var dt = nn.functional.softplus(p["dt_proj.bias"]);
        Assert.That(dt.min().item<float>(), Is.GreaterThanOrEqualTo(1e-3f * 0.999f));
        Assert.That(dt.max().item<float>(), Is.LessThanOrEqualTo(0.1f * 1.001f));
        double dtBound = Math.Pow(2, -0.5);
        Assert.That(p["dt_proj.weight"].abs().max().item<float>(), Is.LessThanOrEqualTo(dtBound));
        // out_proj: U(±1/√fan_in) / √depth.
        double outBound = 1 / Math.Sqrt(64) / Math.Sqrt(24);
        Assert.That(p["out_proj.weight"].abs().max().item<float>(), Is.LessThanOrEqualTo(outBound).And.GreaterThan(outBound * 0.9));
    }

    [Test]
    public void RmsNormMatchesTheFormula()
    {
        using var scope = NewDisposeScope();
        using var norm = new RmsNorm(4);
        using (no_grad()) norm.parameters().Single().copy_(tensor(new float[] { 1f, 0.5f, 2f, 1f }));
        var x = tensor(new float[] { 1, 2, 3, 4, 0, 0, 0, 0 }).reshape(2, 4);
        var y = norm.forward(x);
        // Row 1: mean(x²) = 30/4 = 7.5. Row 2: all zeros stays zero (eps keeps it finite).
        double s = 1 / Math.Sqrt(7.5 + 1e-5);
        var expected = new[] { 1 * s * 1, 2 * s * 0.5, 3 * s * 2, 4 * s * 1, 0, 0, 0, 0 };
        var actual = y.flatten().data<float>().ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-6), $"element {i}");
    }

    [Test]
    public void BlockAddsThePreviousMixerOutputToTheResidualBeforeNorming()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionMamba(ModelTestConfigs.TinyVim with { Depth = 2 }, seed: 4);
        model.eval();
        var hidden = randn(1, 5, 16);
        var residual = randn(1, 5, 16);
        var (newHidden, newResidual) = model.Layers[1].forward(hidden, residual);
        Assert.That(newResidual.allclose(hidden + residual), Is.True);
        var (_, firstResidual) = model.Layers[0].forward(hidden, null);
        Assert.That(firstResidual.eq(hidden).all().item<bool>(), Is.True, "block 0 takes the embedded tokens as the residual");
        Assert.That(newHidden.shape, Is.EqualTo(new long[] { 1, 5, 16 }));
    }
}
