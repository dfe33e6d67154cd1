using NUnit.Framework;
using TorchSharp;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// The mixer's training path that recomputes each branch's scan inputs in backward (<c>MixerBranchFunction</c>) against
/// plain autograd over the same operations (<c>RecomputeScanInputs</c> off): identical outputs and gradients, bit for bit,
/// and less memory held between forward and backward by the two sequence-sized tensors per branch it does not keep.
/// </summary>
public class MixerBranchRecomputeTests
{
    private sealed record Step(Tensor Output, Tensor? InputGradient, Dictionary<string, Tensor?> ParameterGradients);

    private static BiMambaMixer Mixer(bool recompute, int convKernel = 4, long dim = 16)
    {
        var mixer = new BiMambaMixer(dim, stateSize: 16, convKernel: convKernel, expand: 2, dtRank: 3);
        mixer.ResetParameters(new Generator(11), depth: 4);
        mixer.RecomputeScanInputs = recompute;
        mixer.train();
        return mixer;
    }

    private static Step Run(BiMambaMixer mixer, Tensor hidden, bool inputNeedsGrad = true,
        Func<Tensor, Tensor>? under = null)
    {
        var input = hidden.clone().requires_grad_(inputNeedsGrad);
        var output = (under ?? mixer.forward)(input);
        var weights = randn(output.shape, generator: new Generator(3)).to_type(output.dtype);
        (output * weights).sum().backward();
        return new Step(output.detach(), input.grad?.clone(),
            mixer.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad?.clone()));
    }

    private static void AssertIdentical(Step plain, Step recomputed)
    {
        Assert.That(TensorBits.Same(recomputed.Output, plain.Output), Is.True, "output");
        if (plain.InputGradient is null) Assert.That(recomputed.InputGradient, Is.Null, "no input gradient either way");
        else
        {
            Assert.That(plain.InputGradient.abs().sum().item<float>(), Is.GreaterThan(0f), "the input's gradient is not trivially zero");
            Assert.That(TensorBits.Same(recomputed.InputGradient!, plain.InputGradient), Is.True, "input gradient");
        }
        int compared = 0;
        foreach (var (name, expected) in plain.ParameterGradients)
        {
            var actual = recomputed.ParameterGradients[name];
            if (expected is null) { Assert.That(actual, Is.Null, name); continue; }
            Assert.That(actual, Is.Not.Null, name);
            Assert.That(TensorBits.Same(actual!, expected), Is.True, $"{name}: max difference {(actual! - expected).abs().max().item<float>()}");
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(0), "some parameter had a gradient");
    }

    [TestCase(1, 37)]
    [TestCase(2, 64)]
    [TestCase(3, 1)]
    public void SameOutputsAndGradientsAsPlainAutograd(int batch, int length)
    {
        using var scope = NewDisposeScope();
        var hidden = randn(new long[] { batch, length, 16 }, generator: new Generator(5));
        AssertIdentical(Run(Mixer(recompute: false), hidden), Run(Mixer(recompute: true), hidden));
    }

    /// <summary>More taps than the native conv kernel takes: the conv runs as TorchSharp ops (as on CUDA), and its
    /// recomputation is differentiated by autograd inside the branch's backward.</summary>
    [Test]
    public void SameWithTheTensorOpConv()
    {
        using var scope = NewDisposeScope();
        var hidden = randn(new long[] { 2, 45, 16 }, generator: new Generator(6));
        AssertIdentical(Run(Mixer(false, convKernel: 17), hidden), Run(Mixer(true, convKernel: 17), hidden));
    }

    /// <summary>bf16 autocast: the projections run in bf16 in the forward and again, under the same settings, in the
    /// recomputation; the gradients must still match plain autograd's to the bit.</summary>
    [Test]
    public void SameUnderBf16Autocast()
    {
        using var scope = NewDisposeScope();
        var hidden = randn(new long[] { 2, 33, 16 }, generator: new Generator(7));
        Step Autocasted(BiMambaMixer mixer) => Run(mixer, hidden, under: input =>
        {
            using var autocast = new Autocast(DeviceType.CPU, ScalarType.BFloat16);
            return mixer.forward(input);
        });
        var plain = Autocasted(Mixer(false));
        Assert.That(plain.Output.dtype, Is.EqualTo(ScalarType.BFloat16), "autocast is in force");
        AssertIdentical(plain, Autocasted(Mixer(true)));
    }

    /// <summary>Frozen weights and an input without gradient: each branch returns gradients only where they are wanted.</summary>
    [Test]
    public void FrozenParametersAndConstantInput()
    {
        using var scope = NewDisposeScope();
        var hidden = randn(new long[] { 2, 29, 16 }, generator: new Generator(8));
        BiMambaMixer Frozen(bool recompute)
        {
            var mixer = Mixer(recompute);
            foreach (var (name, parameter) in mixer.named_parameters())
                if (name.StartsWith("conv1d") || name.StartsWith("x_proj.") || name == "A_log") parameter.requires_grad_(false);
            return mixer;
        }
        var plain = Run(Frozen(false), hidden, inputNeedsGrad: false);
        var recomputed = Run(Frozen(true), hidden, inputNeedsGrad: false);
        Assert.That(plain.ParameterGradients["conv1d.weight"], Is.Null);
        Assert.That(plain.ParameterGradients["dt_proj.weight"], Is.Not.Null);
        AssertIdentical(plain, recomputed);
    }

    private static MambaBlock Block(bool recompute)
    {
        var block = new MambaBlock(Mixer(recompute), new RmsNorm(16), dropPathRate: 0, residualInFp32: true);
        using (no_grad()) block.named_parameters().Single(p => p.name == "norm.weight").parameter.copy_(rand(16, generator: new Generator(12)) + 0.5f);
        block.Mixer.RecomputeNormedInput = recompute;
        block.train();
        return block;
    }

    /// <summary>One training step of <paramref name="block"/> on a residual that requires grad, optionally under bf16 autocast:
    /// the block's output (hidden + residual), the residual's gradient and every parameter's.</summary>
    private static Step BlockStep(MambaBlock block, Tensor residual, Tensor hidden, bool bf16)
    {
        var input = residual.clone().requires_grad_();
        Tensor output;
        using (bf16 ? new Autocast(DeviceType.CPU, ScalarType.BFloat16) : null)
        {
            var h = bf16 ? hidden.to_type(ScalarType.BFloat16) : hidden;
            var (newHidden, newResidual) = block.forward(h, input);
            output = newHidden.to_type(ScalarType.Float32) + newResidual;
        }
        (output * randn(output.shape, generator: new Generator(15))).sum().backward();
        return new Step(output.detach(), input.grad!.clone(), block.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad?.clone()));
    }

    /// <summary>The block's norm and in_proj as one function (keeping the residual alone) against plain autograd over norm
    /// and in_proj, for one image (mm, whose backward computes a column-major input's gradient in that layout) and for
    /// batches (bmm), in float32 and under bf16 autocast: the same block output, residual gradient and parameter gradients.</summary>
    [TestCase(1, false)]
    [TestCase(2, false)]
    [TestCase(1, true)]
    [TestCase(3, true)]
    public void TheBlocksNormedProjectionMatchesPlainAutograd(int batch, bool bf16)
    {
        using var scope = NewDisposeScope();
        var residual = randn(new long[] { batch, 23, 16 }, generator: new Generator(13));
        var hidden = randn(new long[] { batch, 23, 16 }, generator: new Generator(14));
        var plain = BlockStep(Block(false), residual, hidden, bf16);
        Assert.That(plain.ParameterGradients["norm.weight"], Is.Not.Null);
        AssertIdentical(plain, BlockStep(Block(true), residual, hidden, bf16));
    }

    /// <summary>A frozen norm and in_proj: the function returns only the residual's gradient, as plain autograd does.</summary>
    [Test]
    public void TheNormedProjectionWithFrozenWeights()
    {
        using var scope = NewDisposeScope();
        var residual = randn(new long[] { 2, 19, 16 }, generator: new Generator(16));
        Step Run(bool recompute)
        {
            var block = Block(recompute);
            foreach (var (name, parameter) in block.named_parameters())
                if (name is "norm.weight" or "mixer.in_proj.weight") parameter.requires_grad_(false);
            var input = residual.clone().requires_grad_();
            var (newHidden, _) = block.forward(residual * 0.5, input);
            (newHidden * 1.5).sum().backward();
            return new Step(newHidden.detach(), input.grad!.clone(), block.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad?.clone()));
        }
        var plain = Run(false);
        Assert.That(plain.ParameterGradients["norm.weight"], Is.Null);
        AssertIdentical(plain, Run(true));
    }

    /// <summary>
    /// What the graph holds between forward and backward (glibc's exact count of bytes in use, once everything of the
    /// forward but the loss is freed). Plain autograd keeps, per branch, u (saved by the scan and by x_proj) and Δ (saved
    /// by the scan): 2 × 2 × (batch · d_inner · L) floats that the recomputing path does not hold.
    /// </summary>
    [Test]
    public void HoldsLessForBackward()
    {
        long batch = 2, length = 512, dim = 32, inner = 2 * dim;
        long sequenceBytes = batch * inner * length * sizeof(float);
        using var hidden = randn(new long[] { batch, length, dim }, generator: new Generator(9));
        long Held(bool recompute)
        {
            using var mixer = Mixer(recompute, dim: dim);
            using var input = hidden.clone().requires_grad_();
            return GraphMemory.HeldForBackward(() => mixer.forward(input).sum());
        }
        long plain = Held(false), recomputed = Held(true);
        TestContext.Out.WriteLine($"held for backward: plain {plain / 1024} KiB, recomputing {recomputed / 1024} KiB, one (B, d_inner, L) tensor {sequenceBytes / 1024} KiB");
        Assert.That(plain - recomputed, Is.GreaterThanOrEqualTo(4 * sequenceBytes * 95 / 100), "u and Δ of both branches are not held");
        // What it must still hold: in_proj's output (x and z of both branches, 2 sequences) and out_proj's input (1).
        Assert.That(recomputed, Is.GreaterThanOrEqualTo(3 * sequenceBytes), "x, z and out_proj's input are held");
    }

    /// <summary>The block with its norm and in_proj as one function holds the normalised tokens, one (batch, L, dim) tensor,
    /// less for backward than plain autograd over them (the mixer's branches recompute in both, so that is the difference).</summary>
    [Test]
    public void TheNormedProjectionHoldsTheNormalisedTokensLess()
    {
        long batch = 2, length = 512, dim = 16, tokenBytes = batch * length * dim * sizeof(float);
        using var residual = randn(new long[] { batch, length, dim }, generator: new Generator(17));
        using var hidden = randn(new long[] { batch, length, dim }, generator: new Generator(18));
        long Held(bool recompute)
        {
            using var block = Block(recompute);
            block.Mixer.RecomputeScanInputs = true;
            block.Mixer.RecomputeInputProjection = false;
            using var input = residual.clone().requires_grad_();
            return GraphMemory.HeldForBackward(() => block.forward(hidden, input).Hidden.sum());
        }
        long plain = Held(false), fused = Held(true);
        TestContext.Out.WriteLine($"held for backward: norm and in_proj apart {plain / 1024} KiB, as one function {fused / 1024} KiB, tokens {tokenBytes / 1024} KiB");
        Assert.That(plain - fused, Is.GreaterThanOrEqualTo(tokenBytes * 95 / 100));
    }

    /// <summary>The block's branches recomputing x and z from the residual (<c>InputProjectionReplay</c>) against the same
    /// block keeping them: outputs and every gradient bit for bit, for one image and batches, in float32 and under bf16
    /// autocast (where x and z are widened copies of a half-precision in_proj output), and with in_proj frozen.</summary>
    [TestCase(1, false, false)]
    [TestCase(2, false, false)]
    [TestCase(1, true, false)]
    [TestCase(3, true, false)]
    [TestCase(2, false, true)]
    public void RecomputingInProjOutputChangesNoBit(int batch, bool bf16, bool frozenProjection)
    {
        using var scope = NewDisposeScope();
        var residual = randn(new long[] { batch, 29, 16 }, generator: new Generator(21));
        var hidden = randn(new long[] { batch, 29, 16 }, generator: new Generator(22));
        Step Run(bool replay)
        {
            var block = Block(true);
            block.Mixer.RecomputeInputProjection = replay;
            if (frozenProjection)
                foreach (var (name, parameter) in block.named_parameters())
                    if (name is "norm.weight" or "mixer.in_proj.weight") parameter.requires_grad_(false);
            return BlockStep(block, residual, hidden, bf16);
        }
        var kept = Run(false);
        Assert.That(kept.ParameterGradients["mixer.conv1d_b.weight"], Is.Not.Null);
        AssertIdentical(kept, Run(true));
    }

    /// <summary>Recomputing in_proj's output in backward holds x and z, 2 × (batch, d_inner, L) floats, less for backward than
    /// keeping them, and after backward nothing of the recomputation is left behind.</summary>
    [Test]
    public void RecomputingInProjOutputHoldsXAndZLess()
    {
        long batch = 2, length = 512, dim = 16, inner = 2 * dim;
        long sequenceBytes = batch * inner * length * sizeof(float);
        using var residual = randn(new long[] { batch, length, dim }, generator: new Generator(24));
        using var hidden = randn(new long[] { batch, length, dim }, generator: new Generator(25));
        long Held(bool replay)
        {
            using var block = Block(true);
            block.Mixer.RecomputeInputProjection = replay;
            using var input = residual.clone().requires_grad_();
            return GraphMemory.HeldForBackward(() => block.forward(hidden, input).Hidden.sum());
        }
        long kept = Held(false), replayed = Held(true);
        TestContext.Out.WriteLine($"held for backward: x and z kept {kept / 1024} KiB, recomputed {replayed / 1024} KiB, one (B, d_inner, L) tensor {sequenceBytes / 1024} KiB");
        Assert.That(kept - replayed, Is.GreaterThanOrEqualTo(2 * sequenceBytes * 95 / 100), "x and z are not held");

        // The recomputed xz lives only while the block's branches run backward: steps leave nothing behind.
        using var block = Block(true);
        block.Mixer.RecomputeInputProjection = true;
        long LeftAfterSteps(int steps)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = ProcessMemory.MallocBytesInUse();
            for (int i = 0; i < steps; i++)
            {
                using var step = NewDisposeScope();
                var input = residual.clone().requires_grad_();
                block.forward(hidden, input).Hidden.sum().backward();
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return ProcessMemory.MallocBytesInUse() - before;
        }
        LeftAfterSteps(1);
        long left = Enumerable.Range(0, 3).Min(_ => LeftAfterSteps(4));
        TestContext.Out.WriteLine($"left after 4 steps: {left / 1024} KiB");
        Assert.That(left, Is.LessThan(sequenceBytes / 2), "a recomputed xz outlived its backward");
    }
}
