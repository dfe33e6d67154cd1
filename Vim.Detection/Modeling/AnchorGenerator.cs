using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Anchors for a feature pyramid (Detectron2's DefaultAnchorGenerator). Level i has stride
/// <c>Strides[i]</c> and cell anchors for each of its sizes × aspect ratios (size-major): for size s
/// and ratio r (height / width), w = sqrt(s² / r), h = r·w, centred on 0. The anchors of a level
/// are the cell anchors shifted to every grid point (x = (j + offset)·stride, y likewise), laid out
/// row by row (y major), location major and cell anchor minor.
/// </summary>
public sealed class AnchorGenerator
{
    private readonly double[][] sizes;
    private readonly double[] aspectRatios;
    private readonly long[] strides;

    public double Offset { get; }
    public IReadOnlyList<long> Strides => strides;
    public IReadOnlyList<double> AspectRatios => aspectRatios;

    /// <summary>Cell anchors per location (the same on every level).</summary>
    public int AnchorsPerLocation { get; }

    /// <summary>The official ViTDet setting: sizes 32…512 on p2–p6 (strides 4…64), ratios 0.5/1/2, offset 0.</summary>
    public static AnchorGenerator VitDetDefault() => VitDetPyramid(new RpnSettings());

    /// <summary>The RPN's sizes and aspect ratios on the ViTDet pyramid p2–p6 (strides 4…64, offset 0).</summary>
    public static AnchorGenerator VitDetPyramid(RpnSettings settings) =>
        new(settings.AnchorSizes, settings.AnchorAspectRatios, new long[] { 4, 8, 16, 32, 64 }, 0.0);

    public AnchorGenerator(IReadOnlyList<IReadOnlyList<double>> sizesPerLevel, IReadOnlyList<double> aspectRatios,
        IReadOnlyList<long> strides, double offset)
    {
        if (sizesPerLevel.Count == 0 || sizesPerLevel.Count != strides.Count)
            throw new ArgumentException(
                $"AnchorGenerator: need one size list per level and one stride per level, got {sizesPerLevel.Count} size lists and {strides.Count} strides.");
        if (sizesPerLevel.Select(s => s.Count).Distinct().Count() != 1 || sizesPerLevel[0].Count == 0)
            throw new ArgumentException("AnchorGenerator: every level needs the same, non-zero number of sizes.");
        if (sizesPerLevel.SelectMany(s => s).Any(s => !(s > 0)))
            throw new ArgumentException("AnchorGenerator: anchor sizes must be positive.");
        if (aspectRatios.Count == 0 || aspectRatios.Any(r => !(r > 0)))
            throw new ArgumentException("AnchorGenerator: aspect ratios must be a non-empty list of positive numbers.");
        if (strides.Any(s => s <= 0))
            throw new ArgumentException("AnchorGenerator: strides must be positive.");
        if (!(offset >= 0 && offset < 1))
            throw new ArgumentException($"AnchorGenerator: offset must be in [0, 1), got {offset}.");
        sizes = sizesPerLevel.Select(s => s.ToArray()).ToArray();
        this.aspectRatios = aspectRatios.ToArray();
        this.strides = strides.ToArray();
        Offset = offset;
        AnchorsPerLocation = sizes[0].Length * this.aspectRatios.Length;
    }

    /// <summary>(A, 4) float32 cell anchors of a level, centred on (0, 0).</summary>
    public Tensor CellAnchors(int level)
    {
        var values = new List<float>();
        foreach (var size in sizes[level])
            foreach (var ratio in aspectRatios)
            {
                double w = Math.Sqrt(size * size / ratio);
                double h = ratio * w;
                values.AddRange(new[] { (float)(-w / 2), (float)(-h / 2), (float)(w / 2), (float)(h / 2) });
            }
        return tensor(values.ToArray()).view(-1, 4);
    }

    /// <summary>
    /// Anchors of every level, each (H_i·W_i·A, 4) float32 on <paramref name="device"/>, for feature
    /// maps of the given (height, width) sizes.
    /// </summary>
    public Tensor[] Generate(IReadOnlyList<(long Height, long Width)> gridSizes, Device? device = null)
    {
        if (gridSizes.Count != strides.Length)
            throw new ArgumentException($"AnchorGenerator: {gridSizes.Count} feature maps given, {strides.Length} levels configured.");
        device ??= CPU;
        var result = new Tensor[strides.Length];
        for (int level = 0; level < strides.Length; level++)
        {
            using var scope = NewDisposeScope();
            var (h, w) = gridSizes[level];
            if (h < 0 || w < 0)
                throw new ArgumentException($"AnchorGenerator: grid size of level {level} must be non-negative, got {h}x{w}.");
            double stride = strides[level];
            // Built where the features are: no host-to-device copy of the (H·W·A, 4) grid per forward pass.
            var xs = (arange(w, ScalarType.Float32, device) + (float)Offset) * (float)stride;
            var ys = (arange(h, ScalarType.Float32, device) + (float)Offset) * (float)stride;
            var grid = meshgrid(new[] { ys, xs }, indexing: "ij");
            var sy = grid[0].reshape(-1);
            var sx = grid[1].reshape(-1);
            var shifts = stack(new[] { sx, sy, sx, sy }, dim: 1);
            var anchors = (shifts.view(-1, 1, 4) + CellAnchors(level).to(device).view(1, -1, 4)).reshape(-1, 4);
            result[level] = anchors.MoveToOuterDisposeScope();
        }
        return result;
    }
}
