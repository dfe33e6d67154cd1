namespace Vim.Data.Transforms;

/// <summary>
/// mmseg's and mmdet's RandomCrop: a window at a uniform integer offset, of at most Height×Width (mmdet's crop_type
/// absolute, mmseg's only kind) or of a size drawn by <see cref="CropType"/>.
/// </summary>
public sealed record RandomCropOptions
{
    public int Height { get; init; } = 512;
    public int Width { get; init; } = 512;

    /// <summary>How the window's size is chosen; absolute takes <see cref="Height"/> × <see cref="Width"/>.</summary>
    public CropType CropType { get; init; } = CropType.Absolute;

    /// <summary>[min, max] pixels for absolute_range: the height and then the width each drawn in it (capped by the image's).</summary>
    public int[]? SizeRange { get; init; }

    /// <summary>[height, width] fractions of the image for relative (the size) and relative_range (the lower end, up to 1).</summary>
    public double[]? RelativeSize { get; init; }

    /// <summary>Retry (up to 10 times) while one class covers this fraction or more of the crop's labelled pixels.</summary>
    public double CatMaxRatio { get; init; } = 1.0;
    public int IgnoreIndex { get; init; } = 255;

    /// <summary>
    /// Detection: keep a crop that leaves none of the sample's objects; false (mmdet's default) gives the loader another
    /// sample instead, as mmdet's dataset fetches another index when the pipeline returns None.
    /// </summary>
    public bool AllowNegativeCrop { get; init; }

    /// <summary>
    /// Detection: a masked object's box after the crop is the extent of what is left of its mask (mmdet's recompute_bbox);
    /// false, mmdet's default, keeps its box shifted and clipped (<see cref="BboxClipBorder"/>), which for a cut diagonal or
    /// L-shaped object is larger than what is left. Box-only objects keep their boxes either way.
    /// </summary>
    public bool RecomputeBbox { get; init; }

    /// <summary>Detection: clip the boxes to the window (mmdet's bbox_clip_border); false keeps them as shifted, reaching past it.</summary>
    public bool BboxClipBorder { get; init; } = true;
}

/// <summary>mmdet's RandomCrop crop_type.</summary>
public enum CropType
{
    /// <summary>Height × width, each capped by the image's.</summary>
    Absolute,

    /// <summary>Height, then width, each an integer drawn uniformly in [min(side, size_range[0]), min(side, size_range[1])].</summary>
    AbsoluteRange,

    /// <summary>The image's height and width times relative_size, rounded half up.</summary>
    Relative,

    /// <summary>Each fraction drawn uniformly in [relative_size, 1] (height first), times the side, rounded half up.</summary>
    RelativeRange,
}
