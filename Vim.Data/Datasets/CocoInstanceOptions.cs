using Vim.Core.Config;

namespace Vim.Data.Datasets;

/// <summary>How a COCO instances file becomes training or evaluation samples.</summary>
public sealed record CocoInstanceOptions
{
    /// <summary>
    /// Drop images with no usable non-crowd instance (training); keep every image for evaluation. Ignored where
    /// <see cref="FilterCfg"/> is set, which says which images are kept instead.
    /// </summary>
    public bool SkipImagesWithoutAnnotations { get; init; } = true;

    /// <summary>mmdet's filter_cfg (data.filter_cfg): its filter_data decides which images are kept; null: <see cref="SkipImagesWithoutAnnotations"/> does.</summary>
    public DatasetFilterConfig? FilterCfg { get; init; }

    /// <summary>Read and check the segmentations (a mask model's data); false for box-only training.</summary>
    public bool WithMasks { get; init; } = true;

    /// <summary>
    /// With <see cref="WithMasks"/>, samples carry their instance masks (decoded lazily; training). A detection task's
    /// evaluation reads the masks from the annotation file itself, so its samples need none: every validation mask
    /// would be decoded and resized on each evaluation for nothing.
    /// </summary>
    public bool MasksOnSamples { get; init; } = true;

    /// <summary>
    /// Check, when the dataset is built, that every listed image is a file under the image folder
    /// (<see cref="CocoInstanceDataset.RequireImageFiles"/>). Off only where the images may be absent until something
    /// reads them: a detection task built for evaluation loads the training split for its categories alone.
    /// </summary>
    public bool CheckImageFiles { get; init; } = true;

    /// <summary>Evaluation preset: every image kept.</summary>
    public static CocoInstanceOptions Evaluation { get; } = new() { SkipImagesWithoutAnnotations = false };
}
