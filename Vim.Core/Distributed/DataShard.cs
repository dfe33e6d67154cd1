namespace Vim.Core.Distributed;

/// <summary>
/// Which part of the training stream a process reads. The stream is global: epoch e visits a
/// permutation fixed by (seed, e); each iteration consumes the next <c>perRankBatch × WorldSize</c>
/// samples of it, and rank r takes the r-th block of <c>perRankBatch</c> of them. A data position
/// (epoch, samples consumed) therefore means the same on any world size, which is what lets a run
/// resume on another number of processes.
/// </summary>
public sealed record DataShard
{
    public DataShard(int rank, int worldSize)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new VimException($"data shard: rank {rank} must be in 0..world_size−1 (world_size {worldSize})");
        Rank = rank;
        WorldSize = worldSize;
    }

    public static DataShard Whole { get; } = new(0, 1);

    /// <summary>The shard a process of <paramref name="world"/> trains on (its rank's of the world size).</summary>
    public static DataShard Of(ICommunicator world) => new(world.Rank, world.WorldSize);

    public int Rank { get; }

    public int WorldSize { get; }

    /// <summary>Samples one iteration consumes over all ranks.</summary>
    public long GlobalBatch(int perRankBatch) => (long)perRankBatch * WorldSize;

    /// <summary>Offset (in the epoch's permutation) of this rank's first sample of the iteration starting at <paramref name="globalOffset"/>.</summary>
    public long FirstSample(long globalOffset, int perRankBatch) => globalOffset + (long)Rank * perRankBatch;
}
