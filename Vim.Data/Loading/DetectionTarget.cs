using static TorchSharp.torch;

namespace Vim.Data.Loading;

/// <summary>
/// One image's instances: boxes (n×4 float32 xyxy), labels (n int64), crowd flags (n bool), masks
/// (n×H×W uint8 at the image's unpadded size, or null) and, with the masks, each instance's polygon outlines in pixels
/// (null for an RLE instance; <see cref="Datasets.InstanceMask.Outlines"/>). Owned by its <see cref="Batch"/>.
/// </summary>
public sealed record DetectionTarget(Tensor Boxes, Tensor Labels, Tensor IsCrowd, Tensor? Masks,
    IReadOnlyList<IReadOnlyList<double[]>?>? Outlines = null);
