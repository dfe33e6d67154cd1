namespace Vim.Data.Transforms;

/// <summary>
/// mmdet's FilterAnnotations (detection training): drops the objects whose box is too small (<see cref="ByBox"/>) or whose
/// mask covers too little (<see cref="ByMask"/>). The defaults are mmdet's.
/// </summary>
public sealed record FilterAnnotationsOptions
{
    /// <summary>[width, height]: with <see cref="ByBox"/>, an object stays only while its box is wider and taller than these (strictly).</summary>
    public double[] MinGtBboxWh { get; init; } = [1.0, 1.0];

    /// <summary>
    /// With <see cref="ByMask"/>, an object stays only while its mask's area is at least this: the set pixels of an RLE mask,
    /// the area enclosed by a polygon mask's outlines (mmdet's PolygonMasks.areas, summed over the outlines).
    /// </summary>
    public double MinGtMaskArea { get; init; } = 1;

    /// <summary>Filter by box size.</summary>
    public bool ByBox { get; init; } = true;

    /// <summary>Filter by mask area (the samples must carry masks: model.det_head.mask_on).</summary>
    public bool ByMask { get; init; }

    /// <summary>
    /// mmdet's name for giving the sample up when the filter would leave none of its objects (its transform returns None, so
    /// the dataset fetches another); false keeps the sample with no objects. A sample that comes in without objects always
    /// passes. The name reads the other way round, but it is mmdet's, and mmdet's default (true) gives the sample up.
    /// </summary>
    public bool KeepEmpty { get; init; } = true;
}
