using System.Diagnostics;
using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>Forward+backward of the native autograd function in a loop leaks neither managed tensor
/// wrappers nor native memory (saved inputs, checkpoints, gradients).</summary>
public class SelectiveScanMemoryTests
{
    [Test]
    public void RepeatedForwardBackwardKeepsTensorCountAndMemoryFlat()
    {
        var x = SelectiveScanTestInputs.Create(2, 64, 1024, 16, true, true, true, true, ScalarType.Float32, 21).Leaves();
        var w = randn(2, 64, 1024);
        void Step()
        {
            using var scope = NewDisposeScope();
            var y = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, x.u, x.delta, x.A, x.B, x.C, x.D, x.z, x.deltaBias, true);
            (y * w).sum().backward();
            foreach (var (_, t) in x.Present())
                t.grad?.zero_();
        }
        for (int i = 0; i < 3; i++) Step();   // warm-up: gradients allocated, allocator settled
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long tensorsBefore = torch.Tensor.TotalCount;
        long rssBefore = Rss();
        const int iterations = 60;
        for (int i = 0; i < iterations; i++) Step();
        long tensorsAfter = torch.Tensor.TotalCount;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long rssAfter = Rss();
        // Each iteration creates ~40 tensors (inputs, outputs, checkpoints, 8 gradients) of ~0.5 MB
        // each; a leak of any of them per step would show up as +60 in the count or +30 MB here.
        Assert.That(tensorsAfter - tensorsBefore, Is.LessThanOrEqualTo(0), "live TorchSharp tensors grew");
        Assert.That((rssAfter - rssBefore) / (1024.0 * 1024.0), Is.LessThan(24.0), "resident memory grew (MB)");
        foreach (var (_, t) in x.Present()) t.Dispose();
        w.Dispose();
    }

    private static long Rss()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }
}
