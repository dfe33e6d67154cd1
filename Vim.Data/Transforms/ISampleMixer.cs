using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// A step that combines a sample with others (MMDetection's transforms that take `mix_results`: CopyPaste, Mosaic, MixUp):
/// it changes <paramref name="destination"/> in place, may change the partners (samples of their own, drawn and augmented
/// for this mix) and draws only from <paramref name="random"/>. The loader supplies the partners
/// (<see cref="Loading.DataLoader"/> with mixers).
/// </summary>
public interface ISampleMixer
{
    /// <summary>How many partners one mix takes (the length of mmdet's get_indexes).</summary>
    int PartnerCount { get; }

    /// <summary>
    /// How often the loader may draw a partner until one is <see cref="Accepts">accepted</see>; the last draw is taken
    /// either way (mmdet MixUp's max_iters).
    /// </summary>
    int MaxPartnerDraws => 1;

    /// <summary>Whether a drawn, augmented partner will do (MixUp wants one with objects).</summary>
    bool Accepts(DataSample partner) => true;

    /// <summary>
    /// Whether the mixer runs on the output of the pipeline's first RandomAffine step instead of before it, as YOLOX's
    /// MixUp follows Mosaic → RandomAffine; its partners are prepared as every mixer's are. Without a RandomAffine step it
    /// runs with the others, in its place.
    /// </summary>
    bool FollowsRandomAffine => false;

    /// <summary>
    /// mmdet 3.x's Cached* form (CachedMosaic, CachedMixUp): partners come from a cache of earlier samples of the epoch's
    /// stream (<see cref="Loading.PartnerCache"/>) rather than from the dataset; null: from the dataset.
    /// </summary>
    PartnerCacheSettings? Cache => null;

    void Mix(DataSample destination, IReadOnlyList<DataSample> partners, Random random);

    /// <summary>
    /// The mix once the cache's prob test has passed and the partners are chosen (a cached mixer's order of draws: prob,
    /// partners, then the mix's own); a mixer whose <see cref="Mix"/> tests a probability itself skips that test here.
    /// </summary>
    void MixChosen(DataSample destination, IReadOnlyList<DataSample> partners, Random random) => Mix(destination, partners, random);
}

/// <summary>
/// A cached mixer's cache: <paramref name="MaxCachedImages"/> entries at most, a full one dropping a uniformly drawn entry
/// (<paramref name="RandomPop"/>) or its oldest; a sample mixes only when at least <paramref name="MinimumToMix"/> are
/// cached (itself included), and then with probability <paramref name="Prob"/>.
/// </summary>
public sealed record PartnerCacheSettings(int MaxCachedImages, bool RandomPop, int MinimumToMix, double Prob);
