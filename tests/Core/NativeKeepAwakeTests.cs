using NUnit.Framework;
using TorchSharp;
using Vim.Core.Diagnostics;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>The native pool's keep-awake threads (native/src/cpu_keep_awake.h) seen from the managed
/// side: the switch, and their spinning left out of the process CPU time the benchmarks report.
/// The threads themselves are checked in the CTest program test_cpu_keep_awake.</summary>
[NonParallelizable]
public class NativeKeepAwakeTests
{
    [Test]
    public void SwitchTurnsKeepingAwakeOnAndOff()
    {
        bool before = SelectiveScan.NativeKeepAwake;
        try
        {
            SelectiveScan.NativeKeepAwake = true;
            Assert.That(SelectiveScan.NativeKeepAwake, Is.True);
            SelectiveScan.NativeKeepAwake = false;
            Assert.That(SelectiveScan.NativeKeepAwake, Is.False);
        }
        finally
        {
            SelectiveScan.NativeKeepAwake = before;
        }
    }

    /// <summary>After a two-thread scan the spinners run for their window while this thread sleeps:
    /// the process's CPU time as getrusage counts it grows by their spinning, the figure the
    /// benchmarks use does not. (On a loaded machine the spinners, SCHED_IDLE, may not run at all;
    /// the second assertion holds either way.)</summary>
    [Test]
    public void SpinningIsLeftOutOfTheProcessCpuTime()
    {
        bool keepAwake = SelectiveScan.NativeKeepAwake;
        int threads = SelectiveScan.NativeThreads;
        try
        {
            SelectiveScan.NativeKeepAwake = true;
            SelectiveScan.NativeThreads = 2;
            using var scope = NewDisposeScope();
            var inputs = SelectiveScanTestInputs.Create(1, 64, 300, 16, true, true, true, true, ScalarType.Float32, seed: 3);
            // Once before measuring, so that loading and compiling do not land in the measured span.
            Scan(inputs);
            // Finalisers of earlier tests' tensors would otherwise run, and count, in the measured span.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            Thread.Sleep(100);

            // The quietest of three spans: other threads of the process (the runtime's JIT and GC, on a loaded machine
            // late) add CPU time now and then; spinners left in would add theirs (≈ 40 ms here) every time.
            var spans = new List<(long Raw, long Reported)>();
            for (int attempt = 0; attempt < 3; attempt++)
            {
                long rawBefore = ResourceUsage.GetRUsageCpuMicroseconds(), reportedBefore = ResourceUsage.ProcessCpuMicroseconds();
                Scan(inputs);
                Thread.Sleep(60);
                long rawGrowth = ResourceUsage.GetRUsageCpuMicroseconds() - rawBefore;
                long reportedGrowth = ResourceUsage.ProcessCpuMicroseconds() - reportedBefore;
                // The two figures are read a few µs apart, so work done in between may tip the difference below 0.
                Assert.That(rawGrowth - reportedGrowth, Is.GreaterThanOrEqualTo(-2_000), "the spinners' time is subtracted, never added");
                spans.Add((rawGrowth, reportedGrowth));
                Thread.Sleep(40);
            }
            var quietest = spans.MinBy(s => s.Reported);
            Assert.That(quietest.Reported, Is.LessThan(15_000),
                $"a small scan and 60 ms of sleep, spinners excluded (getrusage counted {quietest.Raw} µs; all spans: {string.Join(", ", spans)})");
        }
        finally
        {
            SelectiveScan.NativeKeepAwake = keepAwake;
            SelectiveScan.NativeThreads = threads;
        }
    }

    private static void Scan(SelectiveScanTestInputs inputs)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, inputs.u, inputs.delta, inputs.A, inputs.B, inputs.C,
            inputs.D, inputs.z, inputs.deltaBias, inputs.Softplus);
    }
}
