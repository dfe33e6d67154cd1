using static TorchSharp.torch;

namespace Vim.Tests;

/// <summary>Bit-for-bit comparison of tensors, for paths that must compute the same thing by the same operations.</summary>
internal static class TensorBits
{
    /// <summary>Same dtype, shape and bytes (after making both contiguous).</summary>
    public static bool Same(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);
}
