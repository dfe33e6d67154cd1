namespace Vim.Data.Datasets;

/// <summary>How a COCO instances file becomes training or evaluation samples.</summary>
public sealed record CocoInstanceOptions
{
    /// <summary>Drop images with no usable non-crowd instance (training); keep every image for evaluation.</summary>
    public bool SkipImagesWithoutAnnotations { get; init; } = true;

    /// <summary>Attach instance masks (decoded lazily); false for box-only training.</summary>
    public bool WithMasks { get; init; } = true;

    /// <summary>Evaluation preset: every image kept.</summary>
    public static CocoInstanceOptions Evaluation { get; } = new() { SkipImagesWithoutAnnotations = false };
}
