using Vim.Data.Transforms;

namespace Vim.Data.Loading;

/// <summary>
/// mmdet 3.x's CachedMosaic / CachedMixUp cache, kept as stream positions rather than samples. The stream is the epoch's
/// global sample order (the sampler's permutation before it is split over processes), so a sample's cache does not depend
/// on the number of processes, worker threads or where a run resumed. At each position the sample's own position joins
/// the cache; a cache over <see cref="PartnerCacheSettings.MaxCachedImages"/> then drops one entry, drawn uniformly from
/// the entries before the newcomer with random_pop, else its oldest, as mmdet's results_cache.pop does (numpy's randint
/// excludes its upper bound, so the newcomer stays and is always the last entry). The pops
/// draw from a generator of their own, seeded by (seed, epoch, mixer), so the cache's evolution needs no sample loaded and
/// can be replayed from the epoch's start. The cache starts empty each epoch. A cached entry is re-produced when it is
/// chosen: its sample run again with its own seed up to the mixer, which is what caching it would have kept.
/// </summary>
public static class PartnerCache
{
    /// <summary>The cache's contents (stream positions, oldest first) after each of <paramref name="length"/> positions joined it.</summary>
    public static int[][] Evolve(int length, PartnerCacheSettings settings, Random pops)
    {
        var cache = new List<int>(settings.MaxCachedImages + 1);
        var contents = new int[length][];
        for (int position = 0; position < length; position++)
        {
            cache.Add(position);
            // mmdet draws numpy's randint(0, len - 1), whose upper bound is excluded: the newcomer (last) never leaves.
            if (cache.Count > settings.MaxCachedImages) cache.RemoveAt(settings.RandomPop ? pops.Next(cache.Count - 1) : 0);
            contents[position] = [.. cache];
        }
        return contents;
    }

    /// <summary>The seed of the pops of the cache of <paramref name="mixerSlot"/> (its place among the mixers) in <paramref name="epoch"/>: negative indices, which no sample has.</summary>
    internal static int PopSeed(int seed, int epoch, int mixerSlot) => SampleSeeds.Mix(seed, epoch, -2 - mixerSlot);
}

/// <summary>One epoch of the loader's caches: the global sample order and, per cached mixer, the cache at each position.</summary>
internal sealed class EpochPartnerCaches
{
    public EpochPartnerCaches(int epoch, int[] globalOrder, IReadOnlyDictionary<ISampleMixer, int[][]> contents)
    {
        Epoch = epoch;
        GlobalOrder = globalOrder;
        Contents = contents;
    }

    public int Epoch { get; }

    /// <summary>The dataset index at each stream position.</summary>
    public int[] GlobalOrder { get; }

    public IReadOnlyDictionary<ISampleMixer, int[][]> Contents { get; }
}
