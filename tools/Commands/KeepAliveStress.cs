using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim env --keepalive-stress SECONDS`: tries to reproduce TorchSharp 0.107's Scalar/Tensor lifetime race that the
/// build's keep-alive rewrite closes (docs/ARCHITECTURE.md, "The TorchSharp keep-alive fix"). Worker threads compute
/// `t + value`, `t.add(full(value))` and `cat([t + value])` on temporaries outside any dispose scope, each with a value no other call
/// uses, while another thread collects garbage and runs finalizers without pause. Where a Scalar or Tensor is
/// finalized while libtorch reads it, the result is wrong (its memory reused by another value), libtorch throws
/// ("Expected false to be true" from Scalar::toFloat), or the process crashes.
/// </summary>
public static class KeepAliveStress
{
    const long Elements = 256;

    public sealed record Result(bool Patched, int Workers, long Operations, long Collections, long WrongResults, long Errors, string? FirstFailure);

    /// <summary>The assembly metadata key the build's rewriter (native/tools/TorchSharpKeepAlive) marks TorchSharp.dll with.</summary>
    public const string RewriteMarker = "VimDense.TorchSharpKeepAlive";

    public static bool IsRewritten(Assembly torchSharp) =>
        torchSharp.GetCustomAttributes<AssemblyMetadataAttribute>().Any(a => a.Key == RewriteMarker);

    public static bool TorchSharpIsPatched => IsRewritten(typeof(torch).Assembly);

    public static Result Run(TimeSpan duration, int workers)
    {
        long operations = 0, collections = 0, wrong = 0, errors = 0;
        string? firstFailure = null;
        using var stop = new CancellationTokenSource(duration);
        void RecordFirstFailure(string what) => Interlocked.CompareExchange(ref firstFailure, what, null);
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref collections);
            }
        });
        var threads = Enumerable.Range(0, workers).Select(worker => new Thread(() =>
        {
            using var ones = torch.ones(Elements, device: CPU);
            for (long i = 0; !stop.IsCancellationRequested; i++)
            {
                // Distinct per worker and iteration, exact in float: a Scalar freed and reused shows as a wrong sum.
                double value = worker * 1000 + i % 997;
                float expected = Elements * (1 + (float)value);
                try
                {
                    // Deliberately no dispose scope and no named temporaries: only the native call holds them.
                    float viaScalar = (ones + value).sum().item<float>();
                    float viaTensor = ones.add(full(Elements, value, device: CPU)).sum().item<float>();
                    float viaList = cat([ones + value], 0).sum().item<float>();
                    if (viaScalar != expected || viaTensor != expected || viaList != expected)
                    {
                        Interlocked.Increment(ref wrong);
                        RecordFirstFailure($"worker {worker}: expected {expected}, got {viaScalar} (t + value), " +
                                           $"{viaTensor} (t.add(tensor)) and {viaList} (cat([t + value]))");
                    }
                }
                catch (ExternalException e)
                {
                    Interlocked.Increment(ref errors);
                    RecordFirstFailure($"worker {worker}: {e.Message.Split('\n')[0]}");
                }
                Interlocked.Add(ref operations, 3);
            }
        })).ToList();
        collector.Start();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        collector.Join();
        return new Result(TorchSharpIsPatched, workers, operations, collections, wrong, errors, firstFailure);
    }
}
