using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// The in-place inference path of VisionMamba (reused buffers, native kernels writing into them) must
/// compute what the autograd path computes: compared against the same model in float64 (the tensor-op
/// reference path) and against float32 with autograd on.
/// </summary>
public class ModelInferencePathTests
{
    private static double Rel(Tensor actual, Tensor expected) =>
        (actual.to_type(ScalarType.Float64) - expected.to_type(ScalarType.Float64)).norm().item<double>() /
        expected.to_type(ScalarType.Float64).norm().item<double>();

    private static IEnumerable<TestCaseData> Configs()
    {
        yield return new TestCaseData(ModelTestConfigs.TinyVim with { TapBlocks = new[] { 0, 1 }, Features = FeatureSource.MixerOutput }, 2L).SetName("MiddleClassTokenMixerTaps");
        // Batch 1 takes its own buffer layout (the backward branch reuses x's block of xz).
        yield return new TestCaseData(ModelTestConfigs.TinyVim, 1L).SetName("BatchOne");
        yield return new TestCaseData(ModelTestConfigs.TinyDet with { TapBlocks = new[] { 0, 1 } }, 2L).SetName("RopeResidualStreamTaps");
        yield return new TestCaseData(ModelTestConfigs.TinyDet with { Depth = 3, RopeResidual = false, TapBlocks = new[] { 1 }, Features = FeatureSource.MixerOutput }, 1L).SetName("RopeHiddenOnly");
    }

    [TestCaseSource(nameof(Configs))]
    public void InPlaceInferenceMatchesTheAutogradPath(VimConfig config, long batch)
    {
        using var scope = NewDisposeScope();
        using var model32 = new VisionMamba(config, seed: 3);
        using var model64 = new VisionMamba(config, seed: 3);
        model64.to(ScalarType.Float64);
        model32.eval();
        model64.eval();
        // 10×6 = 60 patches (+1 class token): long sequences are the scan tests' business.
        var images = randn(new long[] { batch, 3, 160, 96 }, generator: new Generator(11));

        IReadOnlyList<Tensor> tokens32, taps32, tokens64, taps64, tokensGrad;
        using (no_grad())
        {
            Assert.That(model32.CanRunInPlace(images), Is.True, "float32 inference should take the in-place path");
            Assert.That(model64.CanRunInPlace(images.to_type(ScalarType.Float64)), Is.False);
            tokens32 = new[] { model32.ForwardTokens(images) };
            taps32 = model32.ForwardTaps(images);
            tokens64 = new[] { model64.ForwardTokens(images.to_type(ScalarType.Float64)) };
            taps64 = model64.ForwardTaps(images.to_type(ScalarType.Float64));
        }
        Assert.That(model32.CanRunInPlace(images), Is.False, "autograd on: the autograd path");
        tokensGrad = new[] { model32.ForwardTokens(images).detach() };

        Assert.That(Rel(tokens32[0], tokens64[0]), Is.LessThan(1e-5), "final tokens vs float64");
        Assert.That(Rel(tokens32[0], tokensGrad[0]), Is.LessThan(1e-6), "final tokens vs float32 autograd path");
        Assert.That(taps32, Has.Count.EqualTo(taps64.Count));
        for (int i = 0; i < taps32.Count; i++)
        {
            Assert.That(taps32[i].shape, Is.EqualTo(taps64[i].shape));
            Assert.That(Rel(taps32[i], taps64[i]), Is.LessThan(1e-5), $"tap {i}");
        }
    }

    [Test]
    public void TrainingModeAndAutocastTakeTheAutogradPath()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionMamba(ModelTestConfigs.TinyVim, seed: 1);
        var images = randn(1, 3, 32, 32);
        using var noGrad = no_grad();
        model.train();
        Assert.That(model.CanRunInPlace(images), Is.False, "training mode (drop path)");
        model.eval();
        Assert.That(model.CanRunInPlace(images), Is.True);
        using (new Vim.Core.Engine.Autocast(DeviceType.CPU, ScalarType.BFloat16))
            Assert.That(model.CanRunInPlace(images), Is.False, "autocast");
    }
}
