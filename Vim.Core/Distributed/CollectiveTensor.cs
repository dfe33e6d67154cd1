using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>Checks that a tensor can be handed to a collective as raw memory, and finds that memory.</summary>
internal static partial class CollectiveTensor
{
    // TorchSharp keeps its own binding internal; the exported function returns data_ptr() (storage offset included).
    [LibraryImport("LibTorchSharp", EntryPoint = "THSTensor_data")]
    private static partial IntPtr TensorData(IntPtr tensorHandle);

    public static void RequireCpuContiguous(Tensor tensor, string operation)
    {
        if (tensor.device_type != DeviceType.CPU)
            throw new ArgumentException($"{operation}: the tensor is on {tensor.device}; this communicator moves CPU memory (copy to CPU first)");
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{operation}: the tensor (shape [{string.Join(", ", tensor.shape)}]) is not contiguous");
    }

    public static void RequireFloat32(Tensor tensor, string operation)
    {
        RequireCpuContiguous(tensor, operation);
        if (tensor.dtype != ScalarType.Float32)
            throw new ArgumentException($"{operation}: expected a float32 tensor, got {tensor.dtype}");
    }

    public static IntPtr Data(Tensor tensor) => TensorData(tensor.Handle);

    public static long Bytes(Tensor tensor) => tensor.NumberOfElements * tensor.ElementSize;
}
