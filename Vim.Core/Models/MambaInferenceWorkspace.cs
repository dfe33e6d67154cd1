using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Buffers one Vim inference forward reuses across its blocks: the residual stream, the mixer input
/// and output, and the mixer's intermediates (xz, u, x_proj output, Δ, the two branch outputs). Every
/// block writes into the same tensors, so the forward allocates them once instead of ~8 sequence-sized
/// tensors per block.
/// </summary>
/// <remarks>
/// Why: a CPU forward that allocates and frees tens of MB per block either re-faults fresh pages for
/// every tensor (allocations served by mmap) or keeps growing glibc's heap through fragmentation
/// (allocations served from it); at 1024² the latter held ~3× the live tensors. Reused buffers avoid
/// both. The tensors live outside any dispose scope and are freed by <see cref="Dispose"/>.
/// </remarks>
internal sealed class MambaInferenceWorkspace : IDisposable
{
    private readonly Dictionary<string, Tensor> buffers = new();

    /// <summary>The float32 CPU buffer called <paramref name="name"/> with this shape (contents unspecified).</summary>
    public Tensor Get(string name, params long[] shape)
    {
        if (buffers.TryGetValue(name, out var existing))
        {
            if (existing.shape.SequenceEqual(shape)) return existing;
            existing.Dispose();
        }
        var created = empty(shape, ScalarType.Float32).DetachFromDisposeScope();
        buffers[name] = created;
        return created;
    }

    public void Dispose()
    {
        foreach (var buffer in buffers.Values) buffer.Dispose();
        buffers.Clear();
    }
}
