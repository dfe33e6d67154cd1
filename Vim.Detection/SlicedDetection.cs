using System.Globalization;
using Vim.Core;
using Vim.Core.Config;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// How a <see cref="Detector"/> predicts an image in overlapping patches (<see cref="DetectionRequest.Slicing"/>; mmdet's
/// demo/large_image_demo.py, SAHI's sliced prediction): the image is cut into <see cref="PatchSize"/>² patches
/// (<see cref="SlicedDetection.Patches"/>), each predicted as a whole image would be (the config's test pipeline, so a patch
/// is resized into data.crop_size like any image), its detections shifted back into the image, and all of them merged by
/// NMS within each class (<see cref="SlicedDetection.Merge"/>). The defaults are mmdet's demo's.
/// </summary>
public sealed record DetectionSlicing
{
    /// <summary>A patch's side in the image's pixels (mmdet's --patch-size); an image side shorter than it is one patch long.</summary>
    public int PatchSize { get; init; } = 640;

    /// <summary>
    /// The share of a patch its neighbour overlaps, within [0, 1) (mmdet's --patch-overlap-ratio): neighbours start
    /// PatchSize − ⌊ratio · PatchSize⌋ pixels apart, as SAHI steps.
    /// </summary>
    public double OverlapRatio { get; init; } = 0.25;

    /// <summary>The IoU above which the merge's NMS drops (or Soft-NMS decays) a box of the same class (mmdet's --merge-iou-thr).</summary>
    public double MergeIou { get; init; } = 0.25;

    /// <summary>Hard NMS or Soft-NMS for the merge (mmdet's --merge-nms-type nms|soft_nms).</summary>
    public DetectionNmsType MergeNmsType { get; init; } = DetectionNmsType.Nms;

    /// <summary>Soft-NMS's decay where <see cref="MergeNmsType"/> is soft_nms; the default is mmcv's soft_nms (linear, σ 0.5, minimum score 0.001).</summary>
    public SoftNmsSettings MergeSoftNms { get; init; } = new(SoftNmsMethod.Linear, 0.5, 0.001);

    /// <summary>
    /// Also predict the whole image, resized into the test size as without slicing, and merge its detections with the
    /// patches' (SAHI's perform_standard_pred): large objects that no patch holds whole are found there.
    /// </summary>
    public bool IncludeFullImage { get; init; }

    /// <summary>
    /// The most detections kept after the merge, by score; null keeps every one, as mmdet's merge_results_by_nms does (the
    /// point of slicing a large image is that it may hold more objects than the detector's detections_per_image, which
    /// still bounds each patch).
    /// </summary>
    public int? MaxPerImage { get; init; }

    /// <summary>Refuses settings that cannot slice or merge, naming the setting and the `vim infer` option that sets it.</summary>
    public void Check()
    {
        static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);
        if (PatchSize < 1)
            throw new VimException($"DetectionSlicing.PatchSize (vim infer --slice-size) must be a positive number of pixels, got {PatchSize}");
        if (!(OverlapRatio >= 0 && OverlapRatio < 1))
            throw new VimException($"DetectionSlicing.OverlapRatio (vim infer --slice-overlap) must be within [0, 1), got {Text(OverlapRatio)}");
        if (!(MergeIou >= 0 && MergeIou <= 1))
            throw new VimException($"DetectionSlicing.MergeIou (vim infer --merge-iou) must be within [0, 1], got {Text(MergeIou)}");
        ArgumentNullException.ThrowIfNull(MergeSoftNms, nameof(MergeSoftNms));
        _ = SoftNmsSettings.FromConfig(MergeNmsType, MergeSoftNms.Method, MergeSoftNms.Sigma, MergeSoftNms.MinScore, "DetectionSlicing.MergeSoftNms.");
        if (MaxPerImage is < 1)
            throw new VimException($"DetectionSlicing.MaxPerImage must be at least 1 (or null: keep every merged detection), got {MaxPerImage}");
    }
}

/// <summary>A rectangle of an image, in whole pixels: its top-left corner (<see cref="Left"/>, <see cref="Top"/>) and size.</summary>
public readonly record struct ImagePatch(int Left, int Top, int Width, int Height)
{
    public override string ToString() => $"{Width}x{Height} at ({Left}, {Top})";

    /// <summary>Whether the patch is non-empty and lies wholly within a <paramref name="width"/>×<paramref name="height"/> image.</summary>
    public bool LiesWithin(int height, int width) =>
        Left >= 0 && Top >= 0 && Width >= 1 && Height >= 1 && Left + (long)Width <= width && Top + (long)Height <= height;
}

/// <summary>
/// Sliced (tiled) detection of images larger than the detector's input (<see cref="DetectionSlicing"/>): where the patches
/// lie, and how the patches' detections become the image's.
/// </summary>
public static class SlicedDetection
{
    /// <summary>
    /// The patches covering a <paramref name="width"/> × <paramref name="height"/> image, row by row, as SAHI's
    /// get_slice_bboxes places them: along each axis patches start at 0, PatchSize − overlap, … (overlap =
    /// ⌊OverlapRatio · PatchSize⌋), and a patch that would cross the image's far edge is moved back inside, so it ends at
    /// that edge and overlaps its neighbour more. Every patch is PatchSize² where the image is at least that large; along a
    /// side shorter than PatchSize there is one patch, the side's whole length. So all patches of an image share one size.
    /// </summary>
    public static IReadOnlyList<ImagePatch> Patches(int height, int width, DetectionSlicing slicing)
    {
        ArgumentNullException.ThrowIfNull(slicing);
        slicing.Check();
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"an image of {width}x{height} pixels has no patch");
        var rows = Starts(height, slicing);
        var columns = Starts(width, slicing);
        int patchHeight = Math.Min(slicing.PatchSize, height), patchWidth = Math.Min(slicing.PatchSize, width);
        return rows.SelectMany(top => columns.Select(left => new ImagePatch(left, top, patchWidth, patchHeight))).ToList();
    }

    /// <summary>Where patches start along one side of <paramref name="length"/> pixels.</summary>
    private static List<int> Starts(int length, DetectionSlicing slicing)
    {
        int size = slicing.PatchSize;
        int step = size - (int)(slicing.OverlapRatio * size);
        var starts = new List<int>();
        for (int start = 0; ; start += step)
        {
            // The patch that reaches (or would cross) the far edge is the last, ending at the edge.
            if (start + size >= length)
            {
                starts.Add(Math.Max(0, length - size));
                return starts;
            }
            starts.Add(start);
        }
    }

    /// <summary>The pixels (8-bit RGB, HWC) of <paramref name="patch"/> of an image of <paramref name="width"/> × <paramref name="height"/>.</summary>
    public static byte[] Crop(byte[] rgb, int height, int width, ImagePatch patch)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (rgb.Length != 3L * height * width) throw new ArgumentException($"{rgb.Length} bytes for a {width}x{height} RGB image", nameof(rgb));
        RequireInside(patch, height, width);
        var pixels = new byte[3 * patch.Width * patch.Height];
        int rowBytes = 3 * patch.Width;
        for (int y = 0; y < patch.Height; y++)
            Array.Copy(rgb, 3 * ((long)(patch.Top + y) * width + patch.Left), pixels, (long)y * rowBytes, rowBytes);
        return pixels;
    }

    /// <summary>
    /// One image's detections from its patches' (each <see cref="ImageDetections"/> at its patch's size, as the detector
    /// returned it for the patch alone): boxes and masks shifted by the patch's corner into the image (mmdet's
    /// shift_predictions), then NMS within each class over all of them at <see cref="DetectionSlicing.MergeIou"/>, or
    /// Soft-NMS whose decayed scores are then reported (mmdet's merge_results_by_nms), boxes clipped to the image, and the
    /// best <see cref="DetectionSlicing.MaxPerImage"/> kept when set. Detections scoring below <paramref name="minScore"/>
    /// after the merge are left out (Soft-NMS may decay a score below it). The result is ordered by descending score.
    /// </summary>
    /// <param name="parts">Each patch and its detections; the whole image, when predicted too, is the patch covering it.</param>
    public static ImageDetections Merge(IReadOnlyList<(ImagePatch Patch, ImageDetections Found)> parts, int height, int width,
        DetectionSlicing slicing, double minScore = 0)
    {
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentNullException.ThrowIfNull(slicing);
        slicing.Check();
        foreach (var (patch, found) in parts)
        {
            RequireInside(patch, height, width);
            if (found.Height != patch.Height || found.Width != patch.Width)
                throw new ArgumentException($"detections of a {found.Width}x{found.Height} image for the patch {patch}", nameof(parts));
        }
        var pooled = parts.SelectMany(part => part.Found.Detections.Select(found => (part.Patch, Found: found))).ToList();
        if (pooled.Count == 0) return new ImageDetections(height, width, []);
        using var scope = NewDisposeScope();
        // The patches' detections are already managed values on the host, and the merge's NMS is cheap: it runs on the CPU
        // whatever device the detector uses.
        var boxes = tensor(pooled.SelectMany(d => new[]
        {
            d.Found.X1 + d.Patch.Left, d.Found.Y1 + d.Patch.Top, d.Found.X2 + d.Patch.Left, d.Found.Y2 + d.Patch.Top,
        }).ToArray(), device: CPU).reshape(-1, 4);
        var classes = tensor(pooled.Select(d => (long)d.Found.ClassIndex).ToArray(), device: CPU);
        var scores = tensor(pooled.Select(d => d.Found.Score).ToArray(), device: CPU);
        var softNms = slicing.MergeNmsType == DetectionNmsType.SoftNms ? slicing.MergeSoftNms : null;
        var (merged, source) = DetectionTestTimeAugmentation.Merge([new Instances(height, width, new Boxes(boxes), classes, scores)], height, width,
            pooled.Max(d => d.Found.ClassIndex) + 1, slicing.MergeIou, slicing.MaxPerImage ?? -1, softNms);
        var keptBoxes = merged.Boxes.Tensor.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var keptScores = merged.Scores!.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var rows = source.cpu().contiguous().data<long>().ToArray();
        var detections = new List<DetectedObject>();
        for (int i = 0; i < rows.Length; i++)
        {
            if (keptScores[i] < minScore) continue;
            var (patch, found) = pooled[(int)rows[i]];
            detections.Add(found with
            {
                X1 = keptBoxes[4 * i], Y1 = keptBoxes[4 * i + 1], X2 = keptBoxes[4 * i + 2], Y2 = keptBoxes[4 * i + 3],
                Score = keptScores[i],
                Mask = found.Mask?.PlaceIn(height, width, patch.Left, patch.Top),
            });
        }
        return new ImageDetections(height, width, detections);
    }

    private static void RequireInside(ImagePatch patch, int height, int width)
    {
        if (!patch.LiesWithin(height, width))
            throw new ArgumentOutOfRangeException(nameof(patch), $"the patch {patch} does not lie within a {width}x{height} image");
    }
}
