using Vim.Core.Diagnostics;
using static TorchSharp.torch;

namespace Vim.Tests;

/// <summary>What an autograd graph keeps for backward, measured rather than estimated.</summary>
internal static class GraphMemory
{
    /// <summary>
    /// Native bytes still allocated once a forward's tensors, all but its loss, are freed: what the graph holds for backward
    /// (glibc's count of bytes in use, exact whatever the allocator caches). <paramref name="loss"/> runs the forward; a first,
    /// uncounted step creates the gradients, so they are not counted as held. The counted step's backward runs afterwards.
    /// </summary>
    public static long HeldForBackward(Func<Tensor> loss)
    {
        using (var warm = NewDisposeScope()) loss().backward();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = ProcessMemory.MallocBytesInUse();
        Tensor kept;
        using (var step = NewDisposeScope()) kept = loss().MoveToOuterDisposeScope();
        long held = ProcessMemory.MallocBytesInUse() - before;
        kept.backward();
        kept.Dispose();
        return held;
    }
}
