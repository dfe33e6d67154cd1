using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Vim.Core.Native;

/// <summary>
/// Where a tensor's elements start, for handing them to native code (our kernels, MPI, NCCL) or telling tensors that share
/// memory apart. The caller keeps the tensor alive (GC.KeepAlive) for as long as the pointer is used.
/// </summary>
public static partial class TensorMemory
{
    // TorchSharp keeps its own binding internal; the exported function returns data_ptr() (storage offset included) for
    // CPU and CUDA tensors alike.
    [LibraryImport("LibTorchSharp", EntryPoint = "THSTensor_data")]
    private static partial IntPtr DataPtr(IntPtr tensorHandle);

    /// <summary>The address of the tensor's first element; zero for null.</summary>
    public static IntPtr Of(Tensor? tensor) => tensor is null ? IntPtr.Zero : DataPtr(tensor.Handle);
}
