using System.Runtime.InteropServices;
using TorchSharp;
using Vim.Core;
using Vim.Core.Native;
using static TorchSharp.torch;

namespace Vim.Detection.Ops;

/// <summary>P/Invoke declarations of native/include/vimdense/detection_ops.h.</summary>
internal static partial class DetectionNative
{
    private const string Library = "vimdense_native";

    internal static void EnsureLoaded() => NativeLibraryInfo.EnsureLoaded();

    /// <summary>
    /// Whether <paramref name="t"/> goes to the CUDA kernel (true) or the CPU kernel (false). Other devices
    /// have no kernel (their data pointers must never reach ours), and CUDA tensors need a library built
    /// with nvcc: without it the exported CUDA entry points only return an error code, so say how to fix it.
    /// </summary>
    internal static bool UsesCuda(Tensor t, string operation)
    {
        EnsureLoaded();
        switch (t.device_type)
        {
            case DeviceType.CPU:
                return false;
            case DeviceType.CUDA:
                if (!NativeLibraryInfo.HasCuda)
                    throw new VimException($"{operation}: the tensors are on {t.device}, but libvimdense_native was built without CUDA kernels " +
                        "(CMake found no nvcc); rebuild on a machine with the CUDA toolkit (nvcc on PATH)");
                return true;
            default:
                throw new ArgumentException($"{operation}: no kernel for tensors on {t.device} (CPU and CUDA only)");
        }
    }

    [LibraryImport(Library, EntryPoint = "vimdense_det_error_string")]
    private static partial IntPtr ErrorStringNative(int code);

    [LibraryImport(Library, EntryPoint = "vimdense_roi_align_fwd_cpu_f32")]
    internal static partial int RoiAlignForwardCpuF32(IntPtr input, IntPtr rois, long batch, long channels, long height,
        long width, long numRois, long pooledH, long pooledW, double spatialScale, int samplingRatio, int aligned, IntPtr output);

    [LibraryImport(Library, EntryPoint = "vimdense_roi_align_fwd_cpu_f64")]
    internal static partial int RoiAlignForwardCpuF64(IntPtr input, IntPtr rois, long batch, long channels, long height,
        long width, long numRois, long pooledH, long pooledW, double spatialScale, int samplingRatio, int aligned, IntPtr output);

    [LibraryImport(Library, EntryPoint = "vimdense_roi_align_bwd_cpu_f32")]
    internal static partial int RoiAlignBackwardCpuF32(IntPtr gradOutput, IntPtr rois, long batch, long channels, long height,
        long width, long numRois, long pooledH, long pooledW, double spatialScale, int samplingRatio, int aligned, IntPtr gradInput);

    [LibraryImport(Library, EntryPoint = "vimdense_roi_align_bwd_cpu_f64")]
    internal static partial int RoiAlignBackwardCpuF64(IntPtr gradOutput, IntPtr rois, long batch, long channels, long height,
        long width, long numRois, long pooledH, long pooledW, double spatialScale, int samplingRatio, int aligned, IntPtr gradInput);

    [LibraryImport(Library, EntryPoint = "vimdense_roi_align_fwd_cuda_f32")]
    internal static partial int RoiAlignForwardCudaF32(IntPtr input, IntPtr rois, long batch, long channels, long height,
        long width, long numRois, long pooledH, long pooledW, double spatialScale, int samplingRatio, int aligned, IntPtr output,
        IntPtr stream);

    [LibraryImport(Library, EntryPoint = "vimdense_roi_align_bwd_cuda_f32")]
    internal static partial int RoiAlignBackwardCudaF32(IntPtr gradOutput, IntPtr rois, long batch, long channels, long height,
        long width, long numRois, long pooledH, long pooledW, double spatialScale, int samplingRatio, int aligned, IntPtr gradInput,
        IntPtr stream);

    [LibraryImport(Library, EntryPoint = "vimdense_nms_cpu_f32")]
    internal static partial int NmsCpu(IntPtr boxes, IntPtr order, long n, double iouThreshold, IntPtr keep, out long numKeep);

    [LibraryImport(Library, EntryPoint = "vimdense_nms_cuda_f32")]
    internal static partial int NmsCuda(IntPtr boxes, IntPtr order, long n, double iouThreshold, IntPtr keep, out long numKeep,
        IntPtr stream);

    internal static string ErrorString(int code) => Marshal.PtrToStringAnsi(ErrorStringNative(code)) ?? $"error {code}";

    internal static void Check(int code, string operation)
    {
        if (code != 0)
            throw new InvalidOperationException($"{operation}: native kernel failed with code {code}: {ErrorString(code)}.");
    }
}
