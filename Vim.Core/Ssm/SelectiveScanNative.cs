using System.Runtime.InteropServices;

namespace Vim.Core.Ssm;

/// <summary>P/Invoke declarations of native/include/vimdense/selective_scan.h.</summary>
internal static partial class SelectiveScanNative
{
    private const string Library = "vimdense_native";

    [LibraryImport(Library, EntryPoint = "vimdense_scan_error_string")]
    private static partial IntPtr ErrorStringNative(int code);

    [LibraryImport(Library, EntryPoint = "vimdense_scan_checkpoint_floats")]
    internal static partial long CheckpointFloats(long batch, long dim, long length, long dstate);

    [LibraryImport(Library, EntryPoint = "vimdense_scan_set_num_threads")]
    internal static partial int SetNumThreads(int n);

    [LibraryImport(Library, EntryPoint = "vimdense_scan_get_num_threads")]
    internal static partial int GetNumThreads();

    [LibraryImport(Library, EntryPoint = "vimdense_scan_cpu_isa")]
    internal static partial IntPtr CpuIsa();

    [LibraryImport(Library, EntryPoint = "vimdense_cpu_keep_awake")]
    internal static partial int SetKeepAwake(int mode);

    [LibraryImport(Library, EntryPoint = "vimdense_cpu_keep_awake_active")]
    internal static partial int KeepAwakeActive();

    [LibraryImport(Library, EntryPoint = "vimdense_cpu_keep_awake_cpu_us")]
    internal static partial long KeepAwakeCpuMicroseconds();

    [LibraryImport(Library, EntryPoint = "vimdense_selective_scan_fwd_cpu")]
    internal static partial int ForwardCpu(
        IntPtr u, IntPtr delta, IntPtr A, IntPtr B, IntPtr C, IntPtr D, IntPtr z, IntPtr deltaBias,
        int deltaSoftplus, int reverse, long batch, long dim, long length, long dstate,
        IntPtr output, IntPtr lastState, IntPtr checkpoints);

    [LibraryImport(Library, EntryPoint = "vimdense_selective_scan_bwd_cpu")]
    internal static partial int BackwardCpu(
        IntPtr u, IntPtr delta, IntPtr A, IntPtr B, IntPtr C, IntPtr D, IntPtr z, IntPtr deltaBias,
        int deltaSoftplus, int reverse, long batch, long dim, long length, long dstate,
        IntPtr checkpoints, IntPtr dout,
        IntPtr du, IntPtr ddelta, IntPtr dA, IntPtr dB, IntPtr dC, IntPtr dD, IntPtr dz, IntPtr ddeltaBias);

    [LibraryImport(Library, EntryPoint = "vimdense_selective_scan_fwd_cuda")]
    internal static partial int ForwardCuda(
        IntPtr u, IntPtr delta, IntPtr A, IntPtr B, IntPtr C, IntPtr D, IntPtr z, IntPtr deltaBias,
        int deltaSoftplus, int reverse, long batch, long dim, long length, long dstate,
        IntPtr output, IntPtr lastState, IntPtr checkpoints, IntPtr stream);

    [LibraryImport(Library, EntryPoint = "vimdense_selective_scan_bwd_cuda")]
    internal static partial int BackwardCuda(
        IntPtr u, IntPtr delta, IntPtr A, IntPtr B, IntPtr C, IntPtr D, IntPtr z, IntPtr deltaBias,
        int deltaSoftplus, int reverse, long batch, long dim, long length, long dstate,
        IntPtr checkpoints, IntPtr dout,
        IntPtr du, IntPtr ddelta, IntPtr dA, IntPtr dB, IntPtr dC, IntPtr dD, IntPtr dz, IntPtr ddeltaBias,
        IntPtr stream);

    [LibraryImport(Library, EntryPoint = "vimdense_conv1d_silu_fwd_cpu")]
    internal static partial int ConvSiluForwardCpu(IntPtr x, long xBatchStride, IntPtr weight, IntPtr bias, int reverse,
        long batch, long dim, long length, long width, IntPtr output);

    [LibraryImport(Library, EntryPoint = "vimdense_conv1d_silu_bwd_cpu")]
    internal static partial int ConvSiluBackwardCpu(IntPtr x, long xBatchStride, IntPtr weight, IntPtr bias, int reverse,
        long batch, long dim, long length, long width, IntPtr dout, IntPtr dx, IntPtr dweight, IntPtr dbias);

    internal static string ErrorString(int code) => Marshal.PtrToStringAnsi(ErrorStringNative(code)) ?? $"error {code}";

    internal static void Check(int code, string operation)
    {
        if (code != 0)
            throw new InvalidOperationException($"SelectiveScan: native {operation} failed with code {code}: {ErrorString(code)}.");
    }
}
