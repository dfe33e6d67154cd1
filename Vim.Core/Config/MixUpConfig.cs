namespace Vim.Core.Config;

/// <summary>
/// data.mixup (detection training): MMDetection's MixUp inside its MultiImageMixDataset: a second training sample with
/// objects, augmented the same way, resized to fit <see cref="ImgScale"/>, jittered in scale, perhaps flipped and cut to the
/// sample's size, is blended 50/50 with it, and its objects join the sample's. The section absent or null leaves it off;
/// the defaults are mmdet's.
/// </summary>
public sealed class MixUpConfig
{
    /// <summary>[width, height] the partner is first fitted into (mmdet's img_scale, width first).</summary>
    public List<int> ImgScale { get; set; } = [640, 640];

    /// <summary>The partner's scale jitter, drawn uniformly from this range.</summary>
    public List<double> RatioRange { get; set; } = [0.5, 1.5];

    /// <summary>mmdet's flip test: the partner is mirrored when a uniform draw exceeds this, so it is the chance of no flip.</summary>
    public double FlipRatio { get; set; } = 0.5;

    /// <summary>The colour around the fitted partner, 0–255 on every channel.</summary>
    public double PadVal { get; set; } = 114.0;

    /// <summary>Partners drawn at most until one has objects; the last is taken either way, and one without objects mixes nothing.</summary>
    public int MaxIters { get; set; } = 15;

    /// <summary>Clip the partner's boxes to its canvas and to the sample; false keeps them as moved while they overlap the sample.</summary>
    public bool BboxClipBorder { get; set; } = true;

    /// <summary>
    /// mmdet 2.x's skip_filter (its default: true). false applies its _filter_box_candidates to the partner's boxes: one stays
    /// while, cut to the sample, it is wider and taller than <see cref="MinBboxSize"/>, keeps more than
    /// <see cref="MinAreaRatio"/> of its area and its sides' ratio is below <see cref="MaxAspectRatio"/>.
    /// </summary>
    public bool SkipFilter { get; set; } = true;

    public double MinBboxSize { get; set; } = 5;
    public double MinAreaRatio { get; set; } = 0.2;
    public double MaxAspectRatio { get; set; } = 20;

    /// <summary>
    /// mmdet 3.x's CachedMixUp (RTMDet): the partner comes from a cache of the samples before this one in the epoch's
    /// sample order (the sample itself included), each as the pipeline made it up to the mix, instead of a fresh draw from
    /// the dataset; false is mmdet's MixUp.
    /// </summary>
    public bool Cached { get; set; }

    /// <summary>With <see cref="Cached"/>: how many samples the cache holds (mmdet's default 20); at least 2, since a mix needs more than 1 cached.</summary>
    public int MaxCachedImages { get; set; } = 20;

    /// <summary>With <see cref="Cached"/>: a full cache drops a uniformly drawn entry (mmdet's default) rather than its oldest.</summary>
    public bool RandomPop { get; set; } = true;

    /// <summary>CachedMixUp's probability of a mix, otherwise the sample passes unchanged; mmdet's uncached MixUp has none (1 only).</summary>
    public double Prob { get; set; } = 1.0;
}
