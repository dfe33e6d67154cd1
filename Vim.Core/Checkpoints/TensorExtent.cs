namespace Vim.Core.Checkpoints;

/// <summary>
/// Sizes that a checkpoint's header declares, in checked arithmetic: a damaged or hostile file can declare a shape
/// whose element or byte count wraps around 64 bits, pass a size comparison and reach the allocator.
/// </summary>
internal static class TensorExtent
{
    /// <summary>Bytes a tensor of this shape holds, or null when the count does not fit in a long.</summary>
    public static long? Bytes(IReadOnlyList<long> shape, int elementSize)
    {
        try
        {
            return checked(shape.Aggregate(1L, (count, size) => count * size) * elementSize);
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>
    /// Bytes of storage a strided view reaches (one past its furthest element; 0 for an empty view), or null when that
    /// does not fit in a long.
    /// </summary>
    public static long? ReachedBytes(long storageOffset, IReadOnlyList<long> shape, IReadOnlyList<long> stride, int elementSize)
    {
        if (shape.Any(size => size == 0))
            return 0;
        try
        {
            var last = storageOffset;
            for (var i = 0; i < shape.Count; i++)
                last = checked(last + (shape[i] - 1) * stride[i]);
            return checked((last + 1) * elementSize);
        }
        catch (OverflowException)
        {
            return null;
        }
    }
}
