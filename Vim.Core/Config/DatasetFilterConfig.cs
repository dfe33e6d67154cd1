namespace Vim.Core.Config;

/// <summary>
/// data.filter_cfg (detection training): mmdet's CocoDataset filter_cfg, which images of the training splits are trained on.
/// Unset (null), training keeps the images holding a usable non-crowd object, whatever their size; set, exactly mmdet's
/// filter_data with these values, whose defaults (those of an empty <c>filter_cfg: {}</c>) are mmdet's and keep every image.
/// </summary>
public sealed class DatasetFilterConfig
{
    /// <summary>
    /// Drop the images without any annotation in the json: an image with a crowd region, or with an annotation too degenerate
    /// to train on, stays (mmdet reads the json's category-to-image index, which counts every annotation).
    /// </summary>
    public bool FilterEmptyGt { get; set; }

    /// <summary>Drop the images narrower or lower than this many pixels, by the json's width and height.</summary>
    public int MinSize { get; set; }
}
