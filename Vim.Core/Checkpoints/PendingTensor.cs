namespace Vim.Core.Checkpoints;

/// <summary>
/// A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage. It is turned into a
/// TorchSharp tensor only once the tree is complete, so errors can name the tensor by its path.
/// </summary>
internal sealed record PendingTensor(TorchStorageRef Storage, long StorageOffset, long[] Shape, long[] Stride, long PickleOffset)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Elements of the storage the view reaches: one past its furthest element.</summary>
    public long RequiredStorageElements()
    {
        if (ElementCount == 0)
            return 0;
        var last = StorageOffset;
        for (var i = 0; i < Shape.Length; i++)
            last += (Shape[i] - 1) * Stride[i];
        return last + 1;
    }

    public string Describe() =>
        $"offset {StorageOffset}, shape [{string.Join(",", Shape)}], stride [{string.Join(",", Stride)}], {CheckpointDTypes.TorchName(Storage.DType)}";
}
