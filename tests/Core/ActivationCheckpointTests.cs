using NUnit.Framework;
using TorchSharp;
using Vim.Core.Engine;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// model.backbone.with_cp: a checkpointed backbone computes what the plain one computes, to the bit: outputs, the input's
/// gradient and every parameter's, with drop path drawing masks and under autocast; it keeps less for backward; and it
/// changes nothing outside training.
/// </summary>
public class ActivationCheckpointTests
{
    /// <summary>What one training forward + backward produced: the outputs, the images' gradient, each parameter's gradient (null: none).</summary>
    private sealed record StepResult(Tensor[] Outputs, Tensor ImageGradient, Dictionary<string, Tensor?> ParameterGradients);

    private static VisionMamba Vim(VimConfig config, bool withCp) => new(config with { ActivationCheckpointing = withCp }, seed: 3);

    private static VisionTransformer Deit(DeitConfig config, bool withCp) => new(config with { ActivationCheckpointing = withCp }, seed: 3);

    /// <summary>Depth 3 so that drop path draws in two blocks (block 0 has rate 0 in the official schedule).</summary>
    private static readonly VimConfig DetectionVim = ModelTestConfigs.TinyDet with { Depth = 3, DropPathRate = 0.5 };

    /// <summary>Mixer-output taps: nothing reads the last block's residual output, so its gradient arrives undefined.</summary>
    private static readonly VimConfig SegmentationVim = VimVariants.SegTiny with
    {
        EmbedDim = 16, StateSize = 4, Depth = 3, ImageSize = 64, TapBlocks = [0, 1, 2], DropPathRate = 0.5,
    };

    /// <summary>Middle class token, final norm and head.</summary>
    private static readonly VimConfig ClassifierVim = ModelTestConfigs.TinyVim with { Depth = 3, DropPathRate = 0.5, ImageSize = 64 };

    /// <summary>ViTDet-style: no class token, 2×2 windows on the 4×4 grid in blocks 0 and 2, global attention in block 1.</summary>
    private static readonly DeitConfig DetectionDeit = ModelTestConfigs.TinyDeit with
    {
        Depth = 3, ImageSize = 64, NumClasses = 0, ClassToken = false, FinalNorm = false, WindowSize = 2, GlobalBlocks = [1], DropPathRate = 0.5,
    };

    private static readonly DeitConfig ClassifierDeit = ModelTestConfigs.TinyDeit with { Depth = 3, DropPathRate = 0.5 };

    private static IReadOnlyList<Tensor> Outputs(nn.Module model, Tensor images, bool taps) => model switch
    {
        VisionMamba vim when taps => vim.ForwardTaps(images),
        VisionTransformer vit when taps => vit.ForwardTaps(images),
        nn.Module<Tensor, Tensor> classifier => [classifier.call(images)],
        _ => throw new ArgumentException(model.GetType().Name),
    };

    /// <summary>
    /// One training forward + backward of Σ outputs·weights (weights from their own generator, so every output element
    /// gets its own gradient), the global generator seeded with <paramref name="seed"/> first. <paramref name="betweenForwardAndBackward"/>
    /// runs after the forward, before backward.
    /// </summary>
    private static StepResult Step(nn.Module model, Tensor images, bool taps, long seed, Action? betweenForwardAndBackward = null)
    {
        model.train();
        foreach (var p in model.parameters()) p.grad = null;
        var x = images.detach().clone().requires_grad_();
        manual_seed(seed);
        var outputs = Outputs(model, x, taps);
        var weights = new Generator(99);
        var loss = outputs.Select(o => (o.to_type(ScalarType.Float32) * randn(o.shape, generator: weights)).sum()).Aggregate((a, b) => a + b);
        betweenForwardAndBackward?.Invoke();
        loss.backward();
        return new StepResult(outputs.Select(o => o.detach()).ToArray(), x.grad!.clone(),
            model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad?.clone()));
    }

    /// <summary>Same dtype, shape and bytes: bit-identical (unlike ==, which equates 0 and −0 and never NaN).</summary>
    private static void AssertIdentical(StepResult plain, StepResult checkpointed)
    {
        Assert.That(checkpointed.Outputs, Has.Length.EqualTo(plain.Outputs.Length));
        for (int i = 0; i < plain.Outputs.Length; i++)
            Assert.That(TensorBits.Same(checkpointed.Outputs[i], plain.Outputs[i]), Is.True, $"output {i}");
        Assert.That(plain.ImageGradient.abs().sum().item<float>(), Is.GreaterThan(0f), "the images' gradient is not trivially zero");
        Assert.That(TensorBits.Same(checkpointed.ImageGradient, plain.ImageGradient), Is.True, "the images' gradient");
        Assert.That(checkpointed.ParameterGradients.Keys, Is.EquivalentTo(plain.ParameterGradients.Keys));
        int withGradient = 0;
        foreach (var (name, expected) in plain.ParameterGradients)
        {
            var actual = checkpointed.ParameterGradients[name];
            if (expected is null)
            {
                Assert.That(actual, Is.Null, $"{name}: no gradient without checkpointing, none with it");
                continue;
            }
            Assert.That(actual, Is.Not.Null, $"{name}: a gradient without checkpointing, none with it");
            Assert.That(TensorBits.Same(actual!, expected), Is.True, $"{name}: max difference {(actual! - expected).abs().max().item<float>()}");
            withGradient++;
        }
        // Every block parameter must be among the compared (a checkpointed block that lost its parameters' gradients
        // would show up as "none with it" above; this guards against comparing nothing).
        Assert.That(withGradient, Is.GreaterThan(plain.ParameterGradients.Count / 2));
    }

    private static IEnumerable<TestCaseData> VimCases()
    {
        yield return new TestCaseData(DetectionVim, true).SetName("Vim detection backbone (RoPE on hidden and residual, taps)");
        yield return new TestCaseData(SegmentationVim, true).SetName("Vim segmentation backbone (mixer-output taps)");
        yield return new TestCaseData(ClassifierVim, false).SetName("Vim classifier (middle class token, norm_f, head)");
    }

    private static IEnumerable<TestCaseData> DeitCases()
    {
        yield return new TestCaseData(DetectionDeit, true).SetName("DeiT detection backbone (window and global attention)");
        yield return new TestCaseData(ClassifierDeit, false).SetName("DeiT classifier (class token, norm, head)");
    }

    [TestCaseSource(nameof(VimCases))]
    public void VimWithCheckpointingTrainsBitIdentically(VimConfig config, bool taps)
    {
        using var scope = NewDisposeScope();
        using var plain = Vim(config, withCp: false);
        using var checkpointed = Vim(config, withCp: true);
        var images = randn(new long[] { 2, 3, 64, 64 }, generator: new Generator(5));
        AssertIdentical(Step(plain, images, taps, seed: 11), Step(checkpointed, images, taps, seed: 11));
    }

    /// <summary>Checkpointed blocks whose mixers also recompute in_proj's output (model.backbone.recompute_in_proj) inside the
    /// checkpoint's rerun: still the plain backbone's outputs and gradients, drop-path masks and all.</summary>
    [TestCaseSource(nameof(VimCases))]
    public void VimWithCheckpointingAndInProjRecomputationTrainsBitIdentically(VimConfig config, bool taps)
    {
        using var scope = NewDisposeScope();
        using var plain = Vim(config, withCp: false);
        using var both = Vim(config with { RecomputeInputProjection = true }, withCp: true);
        var images = randn(new long[] { 2, 3, 64, 64 }, generator: new Generator(5));
        AssertIdentical(Step(plain, images, taps, seed: 11), Step(both, images, taps, seed: 11));
    }

    [TestCaseSource(nameof(DeitCases))]
    public void DeitWithCheckpointingTrainsBitIdentically(DeitConfig config, bool taps)
    {
        using var scope = NewDisposeScope();
        using var plain = Deit(config, withCp: false);
        using var checkpointed = Deit(config, withCp: true);
        var images = randn(new long[] { 2, 3, config.ImageSize, config.ImageSize }, generator: new Generator(5));
        AssertIdentical(Step(plain, images, taps, seed: 11), Step(checkpointed, images, taps, seed: 11));
    }

    /// <summary>
    /// Between the forward and backward of a real step other code draws from the global generator (the RPN's and the
    /// RoI heads' sampling); here it is reseeded outright. The recomputation still draws the forward's drop-path masks,
    /// which other generator states would not: the plain model's outputs and gradients under another seed differ.
    /// Backward leaves the caller's generator where it was.
    /// </summary>
    [Test]
    public void TheRecomputationReplaysTheForwardsDropPathMasks()
    {
        using var scope = NewDisposeScope();
        using var plain = Vim(DetectionVim, withCp: false);
        using var checkpointed = Vim(DetectionVim, withCp: true);
        var images = randn(new long[] { 2, 3, 64, 64 }, generator: new Generator(5));
        var expected = Step(plain, images, taps: true, seed: 11);

        byte[]? generatorBeforeBackward = null;
        var replayed = Step(checkpointed, images, taps: true, seed: 11, () =>
        {
            manual_seed(12345);
            using var state = torch.random.get_rng_state();
            generatorBeforeBackward = state.data<byte>().ToArray();
        });
        using (var after = torch.random.get_rng_state())
            Assert.That(after.data<byte>().ToArray(), Is.EqualTo(generatorBeforeBackward), "backward restores the caller's generator state");
        AssertIdentical(expected, replayed);

        // Other masks give other outputs and gradients: without the replay the recomputation would differentiate those.
        var otherMasks = Step(plain, images, taps: true, seed: 12345);
        Assert.That(TensorBits.Same(otherMasks.Outputs[0], expected.Outputs[0]), Is.False, "another generator state draws other drop-path masks");
        Assert.That(TensorBits.Same(otherMasks.ImageGradient, expected.ImageGradient), Is.False);
        // The masks themselves: block 1's DropPath on a batch of 64 ones, drawn from the two states.
        using var drop = new DropPath(0.5);
        drop.train();
        manual_seed(11);
        var first = drop.call(ones(64, 1, 1));
        manual_seed(12345);
        var second = drop.call(ones(64, 1, 1));
        Assert.That(TensorBits.Same(first, second), Is.False);
    }

    [Test]
    public void RecomputationRunsUnderTheForwardsAutocastSettings()
    {
        using var scope = NewDisposeScope();
        var images = randn(new long[] { 2, 3, 64, 64 }, generator: new Generator(5));
        foreach (bool deit in new[] { false, true })
        {
            using nn.Module plain = deit ? Deit(DetectionDeit, false) : Vim(DetectionVim, false);
            using nn.Module checkpointed = deit ? Deit(DetectionDeit, true) : Vim(DetectionVim, true);
            // The trainer's shape: autocast around the forward only; backward (and with it the recomputation) outside it.
            StepResult Amp(nn.Module model)
            {
                Autocast? region = new Autocast(DeviceType.CPU, ScalarType.BFloat16);
                try
                {
                    return Step(model, images, taps: true, seed: 11, () => { region.Dispose(); region = null; });
                }
                finally
                {
                    region?.Dispose();
                }
            }
            var expected = Amp(plain);
            var actual = Amp(checkpointed);
            AssertIdentical(expected, actual);
            // A recomputation in float32 would not match: the bf16 forward differs from the float32 one.
            var float32 = Step(plain, images, taps: true, seed: 11);
            Assert.That(TensorBits.Same(float32.ImageGradient, expected.ImageGradient), Is.False, deit ? "DeiT" : "Vim");
        }
        Assert.That(Autocast.IsEnabled(DeviceType.CPU), Is.False, "backward left autocast as it found it");
    }

    /// <summary>lr_mult 0 freezes parameters (requires_grad off): they get no gradient, the rest the plain model's.</summary>
    [Test]
    public void FrozenParametersGetNoGradientAndTheOthersTheirs()
    {
        using var scope = NewDisposeScope();
        using var plain = Vim(DetectionVim, withCp: false);
        using var checkpointed = Vim(DetectionVim, withCp: true);
        foreach (var model in new[] { plain, checkpointed })
            foreach (var (name, p) in model.named_parameters().Where(p => p.name.StartsWith("layers.1.", StringComparison.Ordinal)))
                p.requires_grad_(false);
        var images = randn(new long[] { 2, 3, 64, 64 }, generator: new Generator(5));
        var expected = Step(plain, images, taps: true, seed: 11);
        var actual = Step(checkpointed, images, taps: true, seed: 11);
        Assert.That(actual.ParameterGradients.Where(p => p.Key.StartsWith("layers.1.", StringComparison.Ordinal)).Select(p => p.Value), Has.All.Null);
        AssertIdentical(expected, actual);
    }

    [Test]
    public void OnlyTrainingForwardsWithSomethingToDifferentiateAreCheckpointed()
    {
        using var scope = NewDisposeScope();
        using var model = Vim(DetectionVim, withCp: true);
        var block = model.Layers[1];
        var input = randn(1, 4, 16);
        model.train();
        Assert.That(ActivationCheckpoint.Applies(block, input, null), Is.True, "training, autograd on, parameters requiring grad");
        using (no_grad()) Assert.That(ActivationCheckpoint.Applies(block, input, null), Is.False, "autograd off");
        model.eval();
        Assert.That(ActivationCheckpoint.Applies(block, input, null), Is.False, "eval mode");
        model.train();
        foreach (var p in block.parameters()) p.requires_grad_(false);
        Assert.That(ActivationCheckpoint.Applies(block, input, null), Is.False, "nothing requires grad");
        Assert.That(ActivationCheckpoint.Applies(block, input.requires_grad_(), null), Is.True, "the input requires grad");

        // Inference keeps its in-place path and its results.
        using var plain = Vim(DetectionVim, withCp: false);
        model.eval();
        plain.eval();
        var images = randn(new long[] { 1, 3, 64, 64 }, generator: new Generator(5));
        using (no_grad())
        {
            Assert.That(model.CanRunInPlace(model.EmbedTokens(images)), Is.True);
            Assert.That(TensorBits.Same(model.ForwardTaps(images)[0], plain.ForwardTaps(images)[0]), Is.True);
        }
    }

    /// <summary>
    /// What the graph holds between forward and backward, measured as the native memory still allocated once every
    /// tensor of the forward but the loss is freed (glibc's count of bytes in use, exact whatever the allocator caches).
    /// The plain model keeps each block's intermediates (tens of sequence-sized tensors per block); the checkpointed one
    /// its inputs, two (B, L, D) tensors per block. Both then train to the same gradients (checked above).
    /// </summary>
    [Test]
    public void CheckpointingKeepsLessForBackward()
    {
        var config = DetectionVim with { EmbedDim = 64, Depth = 4, ImageSize = 256, DropPathRate = 0 };
        long batch = 2, tokens = 256, blockInputBytes = 2 * batch * tokens * config.EmbedDim * sizeof(float);
        using var images = randn(new long[] { batch, 3, 256, 256 }, generator: new Generator(5));
        long Held(bool withCp)
        {
            using var model = Vim(config, withCp);
            model.train();
            return GraphMemory.HeldForBackward(() => model.ForwardTaps(images)[0].sum());
        }
        long plain = Held(false), checkpointed = Held(true);
        TestContext.Out.WriteLine($"held for backward: plain {plain / 1024} KiB, checkpointed {checkpointed / 1024} KiB, block inputs {config.Depth * blockInputBytes / 1024} KiB");
        Assert.That(checkpointed, Is.LessThan(plain / 4), "checkpointing keeps a fraction of the activations");
        Assert.That(checkpointed, Is.GreaterThanOrEqualTo((config.Depth - 1) * blockInputBytes), "it still keeps every block's inputs");
    }
}
