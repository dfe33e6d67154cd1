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

    void Mix(DataSample destination, IReadOnlyList<DataSample> partners, Random random);
}
