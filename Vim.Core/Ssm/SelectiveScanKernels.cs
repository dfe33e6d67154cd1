using TorchSharp;
using Vim.Core.Native;
using static TorchSharp.torch;

namespace Vim.Core.Ssm;

/// <summary>
/// Calls the native forward and backward kernels (CPU or CUDA, by the tensors' device) on float32
/// contiguous tensors, allocating outputs with TorchSharp. Inputs must already be validated.
/// </summary>
internal static class SelectiveScanKernels
{
    internal static void EnsureLoaded() => NativeLibraryInfo.EnsureLoaded();

    /// <summary>CPU time the native pool's keep-awake threads have spun so far, in microseconds; 0 until
    /// the native library is loaded (measuring CPU time never loads it).</summary>
    internal static long KeepAwakeCpuMicroseconds() => NativeLibraryInfo.IsLoaded ? SelectiveScanNative.KeepAwakeCpuMicroseconds() : 0;

    /// <summary>Float32, contiguous view or copy of t (null stays null).</summary>
    internal static Tensor? Prepare(Tensor? t) =>
        t is null ? null : (t.dtype == ScalarType.Float32 && t.is_contiguous() ? t.alias() : t.to_type(ScalarType.Float32).contiguous());

    /// <summary>out = scan(inputs) (from the last step to the first when <paramref name="reverse"/>);
    /// with <paramref name="checkpoints"/> the states before each chunk are saved for the backward,
    /// which must then run in the same direction. The result goes into <paramref name="output"/> when
    /// given (float32, contiguous (batch, channels, L), on u's device).</summary>
    internal static Tensor Forward(SelectiveScanShape s, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D, Tensor? z, Tensor? deltaBias, bool softplus, bool reverse, bool saveCheckpoints, out Tensor? checkpoints,
        Tensor? output = null)
    {
        EnsureLoaded();
        bool cuda = u.device.type == DeviceType.CUDA;
        output ??= empty(new[] { s.Batch, s.Channels, s.Length }, ScalarType.Float32, u.device);
        checkpoints = saveCheckpoints ? empty(CheckpointCount(s), ScalarType.Float32, u.device) : null;
        int rc = cuda
            ? SelectiveScanNative.ForwardCuda(TensorMemory.Of(u), TensorMemory.Of(delta), TensorMemory.Of(A), TensorMemory.Of(B), TensorMemory.Of(C), TensorMemory.Of(D), TensorMemory.Of(z), TensorMemory.Of(deltaBias),
                softplus ? 1 : 0, reverse ? 1 : 0, s.Batch, s.Channels, s.Length, s.State, TensorMemory.Of(output), IntPtr.Zero, TensorMemory.Of(checkpoints), IntPtr.Zero)
            : SelectiveScanNative.ForwardCpu(TensorMemory.Of(u), TensorMemory.Of(delta), TensorMemory.Of(A), TensorMemory.Of(B), TensorMemory.Of(C), TensorMemory.Of(D), TensorMemory.Of(z), TensorMemory.Of(deltaBias),
                softplus ? 1 : 0, reverse ? 1 : 0, s.Batch, s.Channels, s.Length, s.State, TensorMemory.Of(output), IntPtr.Zero, TensorMemory.Of(checkpoints));
        // The tensors above are referenced until here, so none can be finalised during the call.
        GC.KeepAlive(u); GC.KeepAlive(delta); GC.KeepAlive(A); GC.KeepAlive(B); GC.KeepAlive(C);
        GC.KeepAlive(D); GC.KeepAlive(z); GC.KeepAlive(deltaBias); GC.KeepAlive(output);
        SelectiveScanNative.Check(rc, cuda ? "CUDA forward" : "CPU forward");
        return output;
    }

    internal sealed record Gradients(Tensor du, Tensor ddelta, Tensor dA, Tensor dB, Tensor dC, Tensor? dD, Tensor? dz, Tensor? ddeltaBias);

    internal static Gradients Backward(SelectiveScanShape s, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D, Tensor? z, Tensor? deltaBias, bool softplus, bool reverse, Tensor? checkpoints, Tensor dout)
    {
        EnsureLoaded();
        bool cuda = u.device.type == DeviceType.CUDA;
        var f32 = ScalarType.Float32;
        var dev = u.device;
        var g = new Gradients(
            empty(u.shape, f32, dev), empty(u.shape, f32, dev), empty(A.shape, f32, dev),
            empty(B.shape, f32, dev), empty(C.shape, f32, dev),
            D is null ? null : empty(D.shape, f32, dev),
            z is null ? null : empty(z.shape, f32, dev),
            deltaBias is null ? null : empty(deltaBias.shape, f32, dev));
        int rc = cuda
            ? SelectiveScanNative.BackwardCuda(TensorMemory.Of(u), TensorMemory.Of(delta), TensorMemory.Of(A), TensorMemory.Of(B), TensorMemory.Of(C), TensorMemory.Of(D), TensorMemory.Of(z), TensorMemory.Of(deltaBias),
                softplus ? 1 : 0, reverse ? 1 : 0, s.Batch, s.Channels, s.Length, s.State, TensorMemory.Of(checkpoints), TensorMemory.Of(dout),
                TensorMemory.Of(g.du), TensorMemory.Of(g.ddelta), TensorMemory.Of(g.dA), TensorMemory.Of(g.dB), TensorMemory.Of(g.dC), TensorMemory.Of(g.dD), TensorMemory.Of(g.dz), TensorMemory.Of(g.ddeltaBias), IntPtr.Zero)
            : SelectiveScanNative.BackwardCpu(TensorMemory.Of(u), TensorMemory.Of(delta), TensorMemory.Of(A), TensorMemory.Of(B), TensorMemory.Of(C), TensorMemory.Of(D), TensorMemory.Of(z), TensorMemory.Of(deltaBias),
                softplus ? 1 : 0, reverse ? 1 : 0, s.Batch, s.Channels, s.Length, s.State, TensorMemory.Of(checkpoints), TensorMemory.Of(dout),
                TensorMemory.Of(g.du), TensorMemory.Of(g.ddelta), TensorMemory.Of(g.dA), TensorMemory.Of(g.dB), TensorMemory.Of(g.dC), TensorMemory.Of(g.dD), TensorMemory.Of(g.dz), TensorMemory.Of(g.ddeltaBias));
        GC.KeepAlive(u); GC.KeepAlive(delta); GC.KeepAlive(A); GC.KeepAlive(B); GC.KeepAlive(C);
        GC.KeepAlive(D); GC.KeepAlive(z); GC.KeepAlive(deltaBias); GC.KeepAlive(checkpoints); GC.KeepAlive(dout);
        SelectiveScanNative.Check(rc, cuda ? "CUDA backward" : "CPU backward");
        return g;
    }

    private static long CheckpointCount(SelectiveScanShape s)
    {
        long n = SelectiveScanNative.CheckpointFloats(s.Batch, s.Channels, s.Length, s.State);
        SelectiveScanNative.Check(n < 0 ? (int)n : 0, "checkpoint sizing");
        return n;
    }
}
