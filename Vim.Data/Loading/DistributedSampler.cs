namespace Vim.Data.Loading;

/// <summary>
/// The order in which one process visits a dataset in an epoch: a permutation fixed by (seed, epoch),
/// padded by wrapping to a multiple of the world size and then strided by rank, like torch's
/// DistributedSampler, so every rank sees the same number of samples and together they cover the set.
/// Rank r's k-th sample is the permutation's entry k·K + r, so the ranks' b samples of iteration i together are
/// the permutation's block [i·b·K, (i+1)·b·K): one process with batch b·K reads the same. Training loaders
/// (drop_last) stop before the padding (<see cref="DataLoader.BatchesPerEpoch"/>).
/// </summary>
public sealed class DistributedSampler
{
    public DistributedSampler(int datasetSize, bool shuffle = true, int seed = 0, int rank = 0, int worldSize = 1)
    {
        if (datasetSize <= 0) throw new ArgumentException($"sampler needs a non-empty dataset, got {datasetSize} samples.");
        if (worldSize <= 0 || rank < 0 || rank >= worldSize)
            throw new ArgumentException($"sampler rank {rank} must be in 0..world_size−1 (world_size {worldSize}).");
        DatasetSize = datasetSize;
        Shuffle = shuffle;
        Seed = seed;
        Rank = rank;
        WorldSize = worldSize;
    }

    public int DatasetSize { get; }
    public bool Shuffle { get; }
    public int Seed { get; }
    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>Samples this rank visits per epoch.</summary>
    public int SamplesPerRank => (DatasetSize + WorldSize - 1) / WorldSize;

    public int[] Indices(int epoch)
    {
        var order = GlobalOrder(epoch);
        var mine = new int[SamplesPerRank];
        for (int k = 0; k < mine.Length; k++) mine[k] = order[GlobalPosition(k)];
        return mine;
    }

    /// <summary>The epoch's permutation of the whole dataset, before striding: identical on every rank, which all shuffle with the same (seed, epoch).</summary>
    public int[] GlobalOrder(int epoch)
    {
        var order = new int[DatasetSize];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (Shuffle) new Random(SampleSeeds.Mix(Seed, epoch, -1)).Shuffle(order);
        return order;
    }

    /// <summary>Where this rank's <paramref name="k"/>-th sample of an epoch lies in <see cref="GlobalOrder"/> (the padding wraps to its start).</summary>
    public int GlobalPosition(int k) => (Rank + k * WorldSize) % (SamplesPerRank * WorldSize) % DatasetSize;
}
