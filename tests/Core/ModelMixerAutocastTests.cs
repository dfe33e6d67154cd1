using NUnit.Framework;
using TorchSharp;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>Under bf16 autocast the mixer's conv and scan must still run on the native float32 kernels
/// (the projections come out in bf16 and are cast back) and agree with the float32 mixer.</summary>
public class ModelMixerAutocastTests
{
    [Test]
    public void MixerUnderBf16AutocastRunsTheNativeScanAndMatchesFloat32()
    {
        using var scope = NewDisposeScope();
        var mixer = new BiMambaMixer(dim: 16, stateSize: 16, convKernel: 4, expand: 2, dtRank: 2);
        mixer.ResetParameters(new Generator(5), depth: 2);
        var hidden = randn(new long[] { 2, 70, 16 }, generator: new Generator(6));
        var weights = randn(new long[] { 2, 70, 16 }, generator: new Generator(7));

        var h32 = hidden.clone().requires_grad_(true);
        var y32 = mixer.forward(h32);
        (y32 * weights).sum().backward();
        var grad32 = h32.grad!.clone();

        var previous = SelectiveScan.DefaultBackend;
        // Pinned to the native kernel: it throws on any input that is not float32, so a bf16 scan input fails here.
        SelectiveScan.DefaultBackend = SelectiveScanBackend.NativeCpu;
        try
        {
            var hAuto = hidden.clone().requires_grad_(true);
            Tensor yAuto;
            using (new Autocast(DeviceType.CPU, ScalarType.BFloat16))
            {
                yAuto = mixer.forward(hAuto);
                Assert.That(yAuto.dtype, Is.EqualTo(ScalarType.BFloat16), "out_proj runs in autocast's dtype");
            }
            (yAuto.to_type(ScalarType.Float32) * weights).sum().backward();

            static double Rel(Tensor actual, Tensor expected) =>
                (actual.to_type(ScalarType.Float32) - expected).norm().item<float>() / expected.norm().item<float>();
            // bf16 keeps 8 mantissa bits: the projections carry ~0.4% error each.
            Assert.That(Rel(yAuto.detach(), y32.detach()), Is.LessThan(3e-2), "output");
            Assert.That(Rel(hAuto.grad!, grad32), Is.LessThan(5e-2), "d hidden");
        }
        finally
        {
            SelectiveScan.DefaultBackend = previous;
        }
    }
}
