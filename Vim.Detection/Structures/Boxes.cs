using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Detection.Structures;

/// <summary>
/// N axis-aligned boxes as an (N, 4) floating tensor in absolute (x1, y1, x2, y2) pixel coordinates
/// (Detectron2's XYXY_ABS). The struct only wraps the tensor; it does not own or dispose it.
/// </summary>
public readonly struct Boxes
{
    /// <summary>The (N, 4) tensor.</summary>
    public Tensor Tensor { get; }

    /// <param name="tensor">(N, 4) floating tensor; an empty tensor of any shape with 0 elements is read as (0, 4).</param>
    public Boxes(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!tensor.is_floating_point())
            throw new ArgumentException($"Boxes: the tensor must be floating point, got {tensor.dtype}.", nameof(tensor));
        if (tensor.numel() == 0 && (tensor.dim() != 2 || tensor.shape[1] != 4))
            tensor = tensor.reshape(0, 4);
        if (tensor.dim() != 2 || tensor.shape[1] != 4)
            throw new ArgumentException(
                $"Boxes: the tensor must have shape (N, 4), got ({string.Join(", ", tensor.shape)}).", nameof(tensor));
        Tensor = tensor;
    }

    /// <summary>Number of boxes.</summary>
    public long Count => Tensor.shape[0];

    /// <summary>(N) widths x2 − x1 (negative for inverted boxes).</summary>
    public Tensor Widths => Tensor[.., 2] - Tensor[.., 0];

    /// <summary>(N) heights y2 − y1.</summary>
    public Tensor Heights => Tensor[.., 3] - Tensor[.., 1];

    /// <summary>(N) areas width × height (Detectron2 does not clamp: inverted boxes give negative or positive products).</summary>
    public Tensor Area() => Widths * Heights;

    /// <summary>Boxes clamped into the image: x into [0, width], y into [0, height].</summary>
    public Boxes Clip(long imageHeight, long imageWidth)
    {
        if (imageHeight < 0 || imageWidth < 0)
            throw new ArgumentException($"Boxes.Clip: image size must be non-negative, got {imageHeight}x{imageWidth}.");
        var x1 = Tensor[.., 0].clamp(0, imageWidth);
        var y1 = Tensor[.., 1].clamp(0, imageHeight);
        var x2 = Tensor[.., 2].clamp(0, imageWidth);
        var y2 = Tensor[.., 3].clamp(0, imageHeight);
        return new Boxes(stack(new[] { x1, y1, x2, y2 }, dim: -1));
    }

    /// <summary>(N) bool: width and height both strictly greater than <paramref name="threshold"/>.</summary>
    public Tensor NonEmpty(double threshold = 0.0) => Widths.gt(threshold).logical_and(Heights.gt(threshold));

    /// <summary>Boxes with x scaled by <paramref name="scaleX"/> and y by <paramref name="scaleY"/> (an image resize).</summary>
    public Boxes Scale(double scaleX, double scaleY)
    {
        var factors = tensor(new[] { scaleX, scaleY, scaleX, scaleY }, Tensor.dtype, Tensor.device);
        return new Boxes(Tensor * factors);
    }

    /// <summary>
    /// The boxes of the horizontally mirrored image of width <paramref name="imageWidth"/>: (x1, y1, x2, y2) becomes
    /// (W − x2, y1, W − x1, y2), so x1 ≤ x2 still holds. Mirroring twice gives the boxes back.
    /// </summary>
    public Boxes FlipHorizontal(long imageWidth) =>
        new(stack(new[] { imageWidth - Tensor[.., 2], Tensor[.., 1], imageWidth - Tensor[.., 0], Tensor[.., 3] }, dim: -1));

    /// <summary>(N, 2) box centres.</summary>
    public Tensor Centers() => (Tensor[.., ..2] + Tensor[.., 2..]) / 2;

    /// <summary>The boxes selected by an index tensor (int64 indices or a bool mask).</summary>
    public Boxes Select(Tensor index) => new(Tensor[index]);

    /// <summary>Concatenates box sets (all of one dtype and device).</summary>
    public static Boxes Concat(IReadOnlyList<Boxes> parts)
    {
        if (parts.Count == 0)
            throw new ArgumentException("Boxes.Concat: at least one box set is required.", nameof(parts));
        return new Boxes(cat(parts.Select(p => p.Tensor).ToArray(), 0));
    }
}
