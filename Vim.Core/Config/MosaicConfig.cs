namespace Vim.Core.Config;

/// <summary>
/// data.mosaic (detection training): MMDetection's Mosaic inside its MultiImageMixDataset: each training sample and three
/// others, augmented the same way, each resized to fit <see cref="ImgScale"/> and placed around a random centre of a canvas
/// twice that size. The section absent or null leaves it off; the defaults are mmdet's.
/// </summary>
public sealed class MosaicConfig
{
    /// <summary>[width, height] of one tile (mmdet's img_scale, width first); the canvas is twice this.</summary>
    public List<int> ImgScale { get; set; } = [640, 640];

    /// <summary>The centre's x and y, each drawn uniformly from this range times the tile's width resp. height.</summary>
    public List<double> CenterRatioRange { get; set; } = [0.5, 1.5];

    /// <summary>Clip boxes to the canvas (then drop the ones left without area); false keeps them as moved while they overlap it.</summary>
    public bool BboxClipBorder { get; set; } = true;

    /// <summary>The colour of the canvas where no tile lands, 0–255 on every channel.</summary>
    public double PadVal { get; set; } = 114.0;

    /// <summary>The probability of a mosaic; otherwise the sample passes unchanged.</summary>
    public double Prob { get; set; } = 1.0;

    /// <summary>
    /// mmdet 3.x's CachedMosaic (RTMDet): the three partners come from a cache of the samples before this one in the
    /// epoch's sample order (the sample itself included) instead of fresh draws from the dataset; false is mmdet's Mosaic.
    /// </summary>
    public bool Cached { get; set; }

    /// <summary>With <see cref="Cached"/>: how many samples the cache holds (mmdet's default 40); at least 5, since a mosaic needs more than 4 cached.</summary>
    public int MaxCachedImages { get; set; } = 40;

    /// <summary>With <see cref="Cached"/>: a full cache drops a uniformly drawn entry (mmdet's default) rather than its oldest.</summary>
    public bool RandomPop { get; set; } = true;
}
