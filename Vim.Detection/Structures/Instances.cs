using static TorchSharp.torch;

namespace Vim.Detection.Structures;

/// <summary>
/// The instances of one image (detections, proposals or ground truth): boxes plus optional
/// per-instance fields of the same length. Image size is (height, width) of the image the boxes
/// refer to. Like <see cref="Boxes"/>, it references tensors without owning them.
/// </summary>
public sealed class Instances
{
    /// <summary>Height of the image the boxes live in, in pixels.</summary>
    public long ImageHeight { get; }

    /// <summary>Width of the image the boxes live in, in pixels.</summary>
    public long ImageWidth { get; }

    /// <summary>(N, 4) xyxy boxes.</summary>
    public Boxes Boxes { get; }

    /// <summary>(N) int64 class indices, or null.</summary>
    public Tensor? Classes { get; }

    /// <summary>(N) float scores (detection confidence, or objectness logits for proposals), or null.</summary>
    public Tensor? Scores { get; }

    /// <summary>(N, H, W) masks (bool/uint8 full-image masks or float mask probabilities), or null.</summary>
    public Tensor? Masks { get; }

    /// <summary>
    /// Ground truth only: each instance's polygon outlines in image pixels (null entries: RLE instances), from which
    /// the mask targets are rasterised; null when the instances carry none.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<double[]>?>? Outlines { get; }

    public Instances(long imageHeight, long imageWidth, Boxes boxes, Tensor? classes = null, Tensor? scores = null,
        Tensor? masks = null, IReadOnlyList<IReadOnlyList<double[]>?>? outlines = null)
    {
        if (imageHeight <= 0 || imageWidth <= 0)
            throw new ArgumentException($"Instances: image size must be positive, got {imageHeight}x{imageWidth}.");
        ImageHeight = imageHeight;
        ImageWidth = imageWidth;
        Boxes = boxes;
        Classes = classes;
        Scores = scores;
        Masks = masks;
        CheckLength(classes, nameof(Classes));
        CheckLength(scores, nameof(Scores));
        CheckLength(masks, nameof(Masks));
        if (outlines is not null && outlines.Count != boxes.Count)
            throw new ArgumentException($"Instances: {outlines.Count} outline lists for {boxes.Count} instances.", nameof(outlines));
        Outlines = outlines;
    }

    /// <summary>Number of instances.</summary>
    public long Count => Boxes.Count;

    /// <summary>The subset picked by an index tensor (int64 indices or a bool mask of length N), every field alike.</summary>
    public Instances Select(Tensor index) =>
        new(ImageHeight, ImageWidth, Boxes.Select(index), Classes?[index], Scores?[index], Masks?[index], Outlines is null ? null : SelectOutlines(index));

    private IReadOnlyList<double[]>?[] SelectOutlines(Tensor index)
    {
        using var scope = NewDisposeScope();
        var positions = index.dtype == ScalarType.Bool ? index.nonzero().flatten() : index;
        return positions.to_type(ScalarType.Int64).cpu().data<long>().ToArray().Select(i => Outlines![(int)i]).ToArray();
    }

    /// <summary>Concatenates instance sets of the same image; a field is kept only if every part has it.</summary>
    public static Instances Concat(IReadOnlyList<Instances> parts)
    {
        if (parts.Count == 0)
            throw new ArgumentException("Instances.Concat: at least one instance set is required.", nameof(parts));
        var first = parts[0];
        if (parts.Any(p => p.ImageHeight != first.ImageHeight || p.ImageWidth != first.ImageWidth))
            throw new ArgumentException("Instances.Concat: all parts must refer to the same image size.", nameof(parts));
        Tensor? Join(Func<Instances, Tensor?> field) =>
            parts.All(p => field(p) is not null) ? cat(parts.Select(p => field(p)!).ToArray(), 0) : null;
        return new Instances(first.ImageHeight, first.ImageWidth, Boxes.Concat(parts.Select(p => p.Boxes).ToList()),
            Join(p => p.Classes), Join(p => p.Scores), Join(p => p.Masks),
            parts.All(p => p.Outlines is not null) ? parts.SelectMany(p => p.Outlines!).ToArray() : null);
    }

    private void CheckLength(Tensor? field, string name)
    {
        if (field is not null && (field.dim() == 0 || field.shape[0] != Boxes.Count))
            throw new ArgumentException(
                $"Instances: field {name} has leading size {(field.dim() == 0 ? 0 : field.shape[0])}, expected {Boxes.Count} (the box count).");
    }
}
