namespace Vim.Core.Ssm;

/// <summary>Which implementation <see cref="SelectiveScan"/> runs.</summary>
public enum SelectiveScanBackend
{
    /// <summary>By device and dtype: CPU float32 → native CPU kernel; CUDA float32 → CUDA kernel when
    /// the native library has it; anything else → reference.</summary>
    Auto,
    /// <summary>Plain TorchSharp ops (<see cref="SelectiveScanReference"/>): any device and dtype, slow.</summary>
    Reference,
    /// <summary>Fused C++ kernel (libvimdense_native): CPU float32 tensors only.</summary>
    NativeCpu,
    /// <summary>CUDA kernel (libvimdense_native built with nvcc): CUDA float32 tensors only.</summary>
    Cuda,
}
