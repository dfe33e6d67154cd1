namespace Vim.Data.Datasets;

/// <summary>
/// A semantic-segmentation folder pair (mmseg's img_dir/ann_dir layout): every file in
/// <see cref="ImageDir"/> ending in <see cref="ImageSuffix"/> has a label map in <see cref="AnnotationDir"/>
/// with the same stem and <see cref="AnnotationSuffix"/>; without an annotation folder, the images alone (a test split).
/// </summary>
public sealed record SegmentationFolderOptions
{
    public required string ImageDir { get; init; }
    /// <summary>The label PNGs; null for a split without labels (ADE20k's test images), whose samples carry no label map.</summary>
    public required string? AnnotationDir { get; init; }
    public string ImageSuffix { get; init; } = ".jpg";
    public string AnnotationSuffix { get; init; } = ".png";
    public required IReadOnlyList<string> ClassNames { get; init; }

    /// <summary>0 becomes 255 (ignore) and every other value k becomes k−1, as for ADE20k's "other" class.</summary>
    public bool ReduceZeroLabel { get; init; }

    /// <summary>
    /// The label value of unlabelled pixels (mmseg's 255 by default). It must lie outside the class
    /// indices 0..K−1, so a dataset with 255 or more classes sets it higher (e.g. 65535).
    /// </summary>
    public int IgnoreIndex { get; init; } = SegmentationFolderDataset.DefaultIgnoreIndex;
}
