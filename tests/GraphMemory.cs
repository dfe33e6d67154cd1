using Vim.Core.Diagnostics;
using static TorchSharp.torch;

namespace Vim.Tests;

/// <summary>What an autograd graph keeps for backward, measured rather than estimated.</summary>
internal static class GraphMemory
{
    /// <summary>
    /// Native bytes still allocated once a forward's tensors, all but its loss, are freed: what the graph holds for backward
    /// (glibc's count of bytes in use, exact whatever the allocator caches). <paramref name="loss"/> runs the forward; a first,
    /// uncounted step creates the gradients, so they are not counted as held. The count is process-wide, so a thread left
    /// over from an earlier test that allocates meanwhile would add to it: the least of <paramref name="rounds"/> steps is
    /// returned (the graph itself holds the same each time). Every counted step's backward runs afterwards.
    /// </summary>
    public static long HeldForBackward(Func<Tensor> loss, int rounds = 3)
    {
        using (var warm = NewDisposeScope()) loss().backward();
        long least = long.MaxValue;
        for (int round = 0; round < rounds; round++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = ProcessMemory.MallocBytesInUse();
            Tensor kept;
            using (var step = NewDisposeScope()) kept = loss().MoveToOuterDisposeScope();
            least = Math.Min(least, ProcessMemory.MallocBytesInUse() - before);
            kept.backward();
            kept.Dispose();
        }
        return least;
    }
}
