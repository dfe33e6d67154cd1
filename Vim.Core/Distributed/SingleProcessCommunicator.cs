using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>The world of one process: every collective is the identity, so single-process code paths need no special cases.</summary>
public sealed class SingleProcessCommunicator : ICommunicator
{
    public static SingleProcessCommunicator Instance { get; } = new();

    public int Rank => 0;

    public int WorldSize => 1;

    public TimeSpan Timeout => System.Threading.Timeout.InfiniteTimeSpan;

    public void AllReduceSum(Tensor tensor) => CollectiveTensor.RequireSummable(tensor, nameof(AllReduceSum));

    public void Broadcast(Tensor tensor, int root = 0)
    {
        CollectiveTensor.RequireCpuContiguous(tensor, nameof(Broadcast));
        if (root != 0)
            throw new ArgumentOutOfRangeException(nameof(root), root, "broadcast root must be a rank of the world (0..0 in a single process)");
    }

    public void Barrier()
    {
    }

    public IReadOnlyList<byte[]> AllGather(byte[] data) => [data.ToArray()];

    public IReadOnlyList<byte[]> Gather(byte[] data, int root = 0) =>
        root == 0 ? [data.ToArray()] : throw new ArgumentOutOfRangeException(nameof(root), root, "gather root must be a rank of the world (0..0 in a single process)");

    public void Dispose()
    {
    }
}
