namespace Vim.Data.Coco;

/// <summary>
/// A ground-truth instance. <see cref="Area"/> is the file's value (COCO's is the mask area, not w·h) and
/// decides the small/medium/large range; it is null when the file has none.
/// </summary>
public sealed record CocoAnnotation(
    long Id,
    long ImageId,
    long CategoryId,
    double[]? Bbox,
    double? Area,
    bool IsCrowd,
    CocoSegmentation? Segmentation);
