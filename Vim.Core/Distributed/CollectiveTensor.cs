using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>Checks that a tensor can be handed to a collective as raw memory, and finds that memory.</summary>
internal static class CollectiveTensor
{
    public static void RequireCpuContiguous(Tensor tensor, string operation)
    {
        if (tensor.device_type != DeviceType.CPU)
            throw new ArgumentException($"{operation}: the tensor is on {tensor.device}; this communicator moves CPU memory (copy to CPU first)");
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{operation}: the tensor (shape [{string.Join(", ", tensor.shape)}]) is not contiguous");
    }

    /// <summary>
    /// The element types a sum may run in: float32 for gradients, and float64 / int64 (and int32) for
    /// statistics that float32 would round, e.g. pixel counts beyond 2^24.
    /// </summary>
    public static void RequireSummable(Tensor tensor, string operation)
    {
        RequireCpuContiguous(tensor, operation);
        if (tensor.dtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"{operation}: expected a float32, float64, int64 or int32 tensor, got {tensor.dtype}");
    }

    public static long Bytes(Tensor tensor) => tensor.NumberOfElements * tensor.ElementSize;
}
