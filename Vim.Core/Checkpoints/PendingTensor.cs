namespace Vim.Core.Checkpoints;

/// <summary>
/// A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage. It is turned into a
/// TorchSharp tensor only once the tree is complete, so errors can name the tensor by its path. Its element and
/// byte counts fit in a long (checked where it is unpickled).
/// </summary>
internal sealed record PendingTensor(TorchStorageRef Storage, long StorageOffset, long[] Shape, long[] Stride, long PickleOffset)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Bytes of the storage the view reaches: up to one past its furthest element.</summary>
    public long RequiredStorageBytes =>
        TensorExtent.ReachedBytes(StorageOffset, Shape, Stride, CheckpointDTypes.ElementSize(Storage.DType))!.Value;

    public string Describe() =>
        $"offset {StorageOffset}, shape [{string.Join(",", Shape)}], stride [{string.Join(",", Stride)}], {CheckpointDTypes.TorchName(Storage.DType)}";
}
