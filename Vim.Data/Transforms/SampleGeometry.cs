using OpenCvSharp;
using Vim.Data.Datasets;
using Vim.Data.Masks;

namespace Vim.Data.Transforms;

/// <summary>Geometric changes applied identically to every part of a sample.</summary>
internal static class SampleGeometry
{
    public static void RequireBytes(DataSample s, string transform)
    {
        if (s.NormalizedImage is not null)
            throw new InvalidOperationException($"{transform} must run before Normalize (the image is already a float tensor).");
    }

    /// <summary>
    /// Bilinear for the image, nearest for masks and label maps (labels must not blend), each as the recipe's library
    /// resamples (<see cref="ImageResampling"/>).
    /// </summary>
    public static void ResizeTo(DataSample s, int newH, int newW, ImageResampling resampling)
    {
        RequireBytes(s, "Resize");
        if (newH <= 0 || newW <= 0) throw new ArgumentException($"resize target {newW}x{newH} must be positive.");
        int h = s.Height, w = s.Width;
        if (newH == h && newW == w) return;
        float sx = (float)newW / w, sy = (float)newH / h;
        bool pillow = resampling == ImageResampling.PillowBilinear;
        s.Image = pillow ? ImageOps.ResizePillowBilinear(s.Image, h, w, 3, newH, newW) : ImageOps.Resize(s.Image, h, w, 3, newH, newW, InterpolationFlags.Linear);
        if (s.LabelMap is not null)
            s.LabelMap = pillow ? ImageOps.ResizePillowNearest(s.LabelMap, h, w, newH, newW) : ImageOps.ResizeLabels(s.LabelMap, h, w, newH, newW);
        if (s.Masks is not null)
            for (int i = 0; i < s.Masks.Count; i++)
                s.Masks[i] = Moved(s.Masks[i], newH, newW, Outlines.Scale(s.Masks[i].Outlines, sx, sy), pixels =>
                    pillow ? ImageOps.ResizePillowNearest(pixels, h, w, newH, newW) : ImageOps.Resize(pixels, h, w, 1, newH, newW, InterpolationFlags.Nearest));
        var b = s.Boxes;
        for (int i = 0; i < b.Length; i += 4)
        {
            b[i] = Math.Clamp(b[i] * sx, 0, newW); b[i + 2] = Math.Clamp(b[i + 2] * sx, 0, newW);
            b[i + 1] = Math.Clamp(b[i + 1] * sy, 0, newH); b[i + 3] = Math.Clamp(b[i + 3] * sy, 0, newH);
        }
        s.ScaleX *= sx;
        s.ScaleY *= sy;
        s.Height = newH; s.Width = newW;
        s.ContentHeight = newH; s.ContentWidth = newW;
    }

    /// <summary>
    /// Cuts the window [x0, x0+cropW) × [y0, y0+cropH). Boxes are shifted, and clipped to the window unless
    /// <paramref name="clipBoxes"/> is false (mmdet's bbox_clip_border); an instance stays while its box overlaps the window
    /// (mmdet's is_inside) and its mask keeps something. With <paramref name="recomputeBoxes"/> (mmdet's recompute_bbox,
    /// detectron2's recompute_boxes) a masked instance's box becomes what is left of its mask; otherwise it stays the shifted box.
    /// </summary>
    public static void CropTo(DataSample s, int y0, int x0, int cropH, int cropW, bool recomputeBoxes = true, bool clipBoxes = true)
    {
        RequireBytes(s, "Crop");
        int h = s.Height, w = s.Width;
        if (y0 < 0 || x0 < 0 || cropH <= 0 || cropW <= 0 || y0 + cropH > h || x0 + cropW > w)
            throw new ArgumentException($"crop window x={x0} y={y0} {cropW}x{cropH} does not fit a {w}x{h} image.");
        bool cropping = !(y0 == 0 && x0 == 0 && cropH == h && cropW == w);
        if (cropping)
        {
            s.Image = ImageOps.Crop(s.Image, w, 3, y0, x0, cropH, cropW);
            if (s.LabelMap is not null) s.LabelMap = ImageOps.Crop(s.LabelMap, w, 1, y0, x0, cropH, cropW);
        }
        var keep = new bool[s.InstanceCount];
        var b = s.Boxes;
        for (int i = 0; i < keep.Length; i++)
        {
            int k = 4 * i;
            float left = Math.Clamp(b[k] - x0, 0, cropW), right = Math.Clamp(b[k + 2] - x0, 0, cropW);
            float top = Math.Clamp(b[k + 1] - y0, 0, cropH), bottom = Math.Clamp(b[k + 3] - y0, 0, cropH);
            // Positive area once clipped: mmdet's is_inside for any box with an area (a loaded box always has one).
            keep[i] = right > left && bottom > top;
            if (clipBoxes) (b[k], b[k + 1], b[k + 2], b[k + 3]) = (left, top, right, bottom);
            else { b[k] -= x0; b[k + 2] -= x0; b[k + 1] -= y0; b[k + 3] -= y0; }
        }
        if (s.Masks is not null)
        {
            for (int i = 0; i < s.Masks.Count; i++)
            {
                if (!keep[i]) continue; // never decode a mask that is being dropped anyway
                if (s.Masks[i].Outlines is { } outlines)
                {
                    // detectron2's polygon path: the outlines are cut to the window, the box is their extent
                    // (recompute_boxes), and the instance stays while any outline does, however thin its pixels.
                    var cut = cropping ? Outlines.Crop(outlines, x0, y0, cropW, cropH) : outlines;
                    if (cropping) s.Masks[i] = Moved(s.Masks[i], cropH, cropW, cut, pixels => pixels);
                    keep[i] = recomputeBoxes ? BoxFromOutlines(b, i, cut, cropW, cropH) : cut.Count > 0;
                    continue;
                }
                if (cropping) s.Masks[i] = new InstanceMask(cropH, cropW, ImageOps.Crop(s.Masks[i].Pixels, w, 1, y0, x0, cropH, cropW));
                // An instance whose mask is empty (cut away, or too thin to survive a downscale) would train the mask
                // head on an all-zero target for a foreground RoI: dropped, as mmdet's empty-mask filter and
                // detectron2's filter_empty_instances drop it, whether or not this crop cut anything.
                if (!cropping || !recomputeBoxes)
                    keep[i] = s.Masks[i].Pixels.AsSpan().IndexOfAnyExcept((byte)0) >= 0;
                // A cut object's box is its visible part's (ViTDet's recompute_boxes, mmdet's recompute_bbox), not the
                // clipped original, which for a cut diagonal or L-shaped object is far larger than what is left.
                else keep[i] = BoxFromPixels(b, i, s.Masks[i].Pixels, cropH, cropW);
            }
        }
        s.Height = cropH; s.Width = cropW;
        s.ContentHeight = cropH; s.ContentWidth = cropW;
        s.KeepInstances(keep);
    }

    /// <summary>
    /// Moves a detection sample by (<paramref name="dx"/>, <paramref name="dy"/>) pixels into a canvas of
    /// <paramref name="canvasH"/>×<paramref name="canvasW"/>, cutting what falls outside (mmdet's mix transforms: paste a
    /// window of an image into a canvas, translate its annotations). The image lands in <paramref name="canvas"/> (left
    /// as it is elsewhere) or in a new canvas of <paramref name="fill"/>; RLE masks move with the pixels, polygon outlines
    /// exactly, cut to the canvas (Sutherland–Hodgman); boxes are shifted and neither clipped nor filtered, since each
    /// mix transform has its own rule for both (<see cref="KeepInside"/> ends each). Every instance stays, an emptied mask included.
    /// The whole canvas is content afterwards.
    /// </summary>
    public static void Translate(DataSample s, int dx, int dy, int canvasH, int canvasW, byte fill, byte[]? canvas = null)
    {
        RequireBytes(s, "a mix transform");
        if (s.LabelMap is not null) throw new InvalidOperationException($"{s.FilePath}: mix transforms move instances; a sample with a label map (segmentation) has none.");
        int h = s.Height, w = s.Width;
        if (canvas is null)
        {
            canvas = new byte[canvasH * canvasW * 3];
            if (fill != 0) Array.Fill(canvas, fill);
        }
        else if (canvas.Length != canvasH * canvasW * 3)
            throw new ArgumentException($"canvas has {canvas.Length} bytes, expected {canvasH}x{canvasW}x3.", nameof(canvas));
        ImageOps.Place(s.Image, h, w, 3, canvas, canvasH, canvasW, dx, dy);
        s.Image = canvas;
        if (s.Masks is not null)
            for (int i = 0; i < s.Masks.Count; i++)
            {
                var outlines = s.Masks[i].Outlines is { } o ? Outlines.Crop(o, -dx, -dy, canvasW, canvasH) : null;
                s.Masks[i] = Moved(s.Masks[i], canvasH, canvasW, outlines, pixels =>
                {
                    var moved = new byte[canvasH * canvasW];
                    ImageOps.Place(pixels, h, w, 1, moved, canvasH, canvasW, dx, dy);
                    return moved;
                });
            }
        var b = s.Boxes;
        for (int k = 0; k < b.Length; k += 4)
        {
            b[k] += dx; b[k + 2] += dx;
            b[k + 1] += dy; b[k + 3] += dy;
        }
        s.Height = canvasH; s.Width = canvasW;
        s.ContentHeight = canvasH; s.ContentWidth = canvasW;
    }

    /// <summary>
    /// mmdet's end of a mix: with <paramref name="clip"/> every box is clipped to the sample; a box kept must overlap it
    /// (is_inside), and its mask must have something left (ours).
    /// </summary>
    public static bool[] KeepInside(DataSample sample, bool clip)
    {
        int width = sample.Width, height = sample.Height;
        var b = sample.Boxes;
        var keep = new bool[sample.InstanceCount];
        for (int i = 0; i < keep.Length; i++)
        {
            int k = 4 * i;
            if (clip)
            {
                b[k] = Math.Clamp(b[k], 0, width); b[k + 2] = Math.Clamp(b[k + 2], 0, width);
                b[k + 1] = Math.Clamp(b[k + 1], 0, height); b[k + 3] = Math.Clamp(b[k + 3], 0, height);
            }
            keep[i] = b[k] < width && b[k + 1] < height && b[k + 2] > 0 && b[k + 3] > 0
                && (sample.Masks is null || HasPixels(sample.Masks[i]));
        }
        return keep;
    }

    /// <summary>Whether an instance's mask has anything left: an outline (polygons) or a set pixel (RLE).</summary>
    private static bool HasPixels(InstanceMask mask) =>
        mask.Outlines is { } outlines ? outlines.Count > 0 : mask.Pixels.AsSpan().IndexOfAnyExcept((byte)0) >= 0;

    /// <summary>
    /// mmcv.imrotate applied to every part of a sample: <paramref name="degrees"/> clockwise on screen (mmcv's sign: it hands
    /// OpenCV's counter-clockwise getRotationMatrix2D −degrees) about <paramref name="center"/> ([x, y] in pixel indices; by
    /// default the image's middle ((w − 1)/2, (h − 1)/2)), or with <paramref name="autoBound"/> about the middle into a canvas
    /// resized to hold the whole rotated image. The image is resampled bilinearly (uncovered pixels <paramref name="padValue"/>),
    /// the label map by nearest neighbour (<paramref name="segPadValue"/>). An RLE instance's mask is rotated by nearest
    /// neighbour and its box recomputed from it (mmdet's recompute_bbox); a polygon instance's outlines are moved exactly and
    /// cut to the image, its box their extent (as <see cref="CropTo"/> treats both); a box-only instance's box becomes the
    /// enclosing box of its rotated corners, clipped (mmdet's bbox_project). Instances left with nothing inside are dropped.
    /// The whole canvas is content afterwards, as after a crop; the scale factors and flip flag are left as they are.
    /// </summary>
    public static void Rotate(DataSample s, double degrees, double[]? center, bool autoBound, int padValue, int segPadValue)
    {
        RequireBytes(s, "RandomRotate");
        var (pixelMatrix, newH, newW) = RotationMatrix(s.Height, s.Width, degrees, center, autoBound);
        Warp(s, pixelMatrix, newH, newW, padValue, segPadValue);
    }

    /// <summary>
    /// Moves every part of a sample through the affine <paramref name="pixelMatrix"/> (2×3 row-major, source pixel indices
    /// → destination ones, as OpenCV's warpAffine reads it) onto a <paramref name="newH"/>×<paramref name="newW"/> canvas,
    /// with <see cref="Rotate"/>'s rules for the image, label map, masks and boxes.
    /// </summary>
    public static void Warp(DataSample s, double[] pixelMatrix, int newH, int newW, int padValue, int segPadValue)
    {
        int h = s.Height, w = s.Width;
        s.Image = ImageOps.WarpAffine(s.Image, h, w, 3, pixelMatrix, newH, newW, InterpolationFlags.Linear, padValue);
        if (s.LabelMap is not null)
            s.LabelMap = ImageOps.WarpAffine(s.LabelMap, h, w, 1, pixelMatrix, newH, newW, InterpolationFlags.Nearest, segPadValue);
        // The matrix maps pixel indices (centres at integers); boxes and outlines are in continuous coordinates, where pixel i
        // spans [i, i + 1), so they move through it half a pixel shifted, and a rotated box encloses exactly its rotated pixels.
        var m = pixelMatrix;
        double[] continuous = [m[0], m[1], m[2] + 0.5 - 0.5 * (m[0] + m[1]), m[3], m[4], m[5] + 0.5 - 0.5 * (m[3] + m[4])];
        var keep = new bool[s.InstanceCount];
        var b = s.Boxes;
        for (int i = 0; i < keep.Length; i++)
        {
            if (s.Masks is null)
            {
                keep[i] = RotateBox(b, i, continuous, newW, newH);
                continue;
            }
            var mask = s.Masks[i];
            if (mask.Outlines is { } outlines)
            {
                var moved = Outlines.Crop(Outlines.Affine(outlines, continuous)!, 0, 0, newW, newH);
                s.Masks[i] = Moved(mask, newH, newW, moved, pixels => pixels);
                keep[i] = BoxFromOutlines(b, i, moved, newW, newH);
            }
            else
            {
                var pixels = ImageOps.WarpAffine(mask.Pixels, h, w, 1, pixelMatrix, newH, newW, InterpolationFlags.Nearest, 0);
                s.Masks[i] = new InstanceMask(newH, newW, pixels);
                keep[i] = BoxFromPixels(b, i, pixels, newH, newW);
            }
        }
        s.Height = newH; s.Width = newW;
        s.ContentHeight = newH; s.ContentWidth = newW;
        s.KeepInstances(keep);
    }

    /// <summary>
    /// mmcv.imrotate's matrix (2×3 row-major, source pixel indices → destination ones) and output size for an h×w image.
    /// </summary>
    internal static (double[] Matrix, int Height, int Width) RotationMatrix(int h, int w, double degrees, double[]? center, bool autoBound)
    {
        if (center is not null && autoBound) throw new ArgumentException("auto_bound rotates about the image's middle and conflicts with center.");
        var (cx, cy) = center is { } c ? (c[0], c[1]) : ((w - 1) * 0.5, (h - 1) * 0.5);
        // OpenCV takes the centre as floats (so does mmcv, through cv2), and rounds cos and sin as it does.
        using var rotation = Cv2.GetRotationMatrix2D(new Point2f((float)cx, (float)cy), -degrees, 1.0);
        var m = new double[6];
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 3; k++) m[3 * r + k] = rotation.Get<double>(r, k);
        if (!autoBound) return (m, h, w);
        double cos = Math.Abs(m[0]), sin = Math.Abs(m[1]);
        double boundW = h * sin + w * cos, boundH = h * cos + w * sin;
        m[2] += (boundW - w) * 0.5;
        m[5] += (boundH - h) * 0.5;
        // numpy's round: halves to even.
        return (m, (int)Math.Round(boundH, MidpointRounding.ToEven), (int)Math.Round(boundW, MidpointRounding.ToEven));
    }

    /// <summary>
    /// Replaces box <paramref name="i"/> by the enclosing box of its four corners moved through <paramref name="matrix"/>,
    /// clipped to the image; false when no area is left inside.
    /// </summary>
    private static bool RotateBox(float[] boxes, int i, IReadOnlyList<double> matrix, int width, int height)
    {
        int k = 4 * i;
        double minX = double.PositiveInfinity, minY = double.PositiveInfinity, maxX = double.NegativeInfinity, maxY = double.NegativeInfinity;
        foreach (var (x, y) in new (double X, double Y)[] { (boxes[k], boxes[k + 1]), (boxes[k + 2], boxes[k + 1]), (boxes[k], boxes[k + 3]), (boxes[k + 2], boxes[k + 3]) })
        {
            double movedX = matrix[0] * x + matrix[1] * y + matrix[2], movedY = matrix[3] * x + matrix[4] * y + matrix[5];
            minX = Math.Min(minX, movedX); maxX = Math.Max(maxX, movedX);
            minY = Math.Min(minY, movedY); maxY = Math.Max(maxY, movedY);
        }
        boxes[k] = (float)Math.Clamp(minX, 0, width); boxes[k + 2] = (float)Math.Clamp(maxX, 0, width);
        boxes[k + 1] = (float)Math.Clamp(minY, 0, height); boxes[k + 3] = (float)Math.Clamp(maxY, 0, height);
        return boxes[k + 2] - boxes[k] > BoxEpsilon && boxes[k + 3] - boxes[k + 1] > BoxEpsilon;
    }

    /// <summary>
    /// Sets box <paramref name="i"/> to the extent of a polygon instance's outlines inside a width×height image (an uncut
    /// annotation's outline may stray past its border) and says whether the instance stays: while an outline remains and the
    /// box has an area, since a zero-area ground-truth box would match every anchor as a low-quality match.
    /// </summary>
    private static bool BoxFromOutlines(float[] boxes, int i, IReadOnlyList<double[]> outlines, int width, int height)
    {
        int k = 4 * i;
        if (Outlines.Extent(outlines) is { } extent)
        {
            boxes[k] = Math.Clamp(extent[0], 0, width); boxes[k + 2] = Math.Clamp(extent[2], 0, width);
            boxes[k + 1] = Math.Clamp(extent[1], 0, height); boxes[k + 3] = Math.Clamp(extent[3], 0, height);
        }
        return boxes[k + 2] - boxes[k] > BoxEpsilon && boxes[k + 3] - boxes[k + 1] > BoxEpsilon && outlines.Count > 0;
    }

    /// <summary>Sets box <paramref name="i"/> to its mask's set pixels (<see cref="TightBox"/>); false when the mask is empty.</summary>
    private static bool BoxFromPixels(float[] boxes, int i, byte[] pixels, int height, int width)
    {
        if (TightBox(pixels, height, width) is not { } tight) return false;
        tight.CopyTo(boxes.AsSpan(4 * i, 4));
        return true;
    }

    /// <summary>
    /// An instance's mask after a geometric change. A polygon instance's pixels are its moved outlines rasterised at the
    /// new size, as pycocotools draws them, and only when something reads them (its mask targets come from the outlines,
    /// so no full-size bitmap is resized or cut for it); an RLE instance's pixels go through <paramref name="movePixels"/>.
    /// </summary>
    internal static InstanceMask Moved(InstanceMask mask, int newH, int newW, IReadOnlyList<double[]>? outlines, Func<byte[], byte[]> movePixels) =>
        outlines is not null
            ? new InstanceMask(newH, newW, () => PolygonRasterizer.FromPolygons(outlines, newH, newW).Decode(), outlines)
            : new InstanceMask(newH, newW, movePixels(mask.Pixels));

    /// <summary>detectron2's filter_empty_instances box threshold: a box narrower than this is empty.</summary>
    private const float BoxEpsilon = 1e-5f;

    /// <summary>The box [x0, y0, x1, y1] of a mask's set pixels (x1, y1 one past the last), as mmdet's BitmapMasks.get_bboxes; null when none is set.</summary>
    public static float[]? TightBox(byte[] pixels, int height, int width)
    {
        int minX = width, minY = -1, maxX = -1, maxY = -1;
        for (int y = 0; y < height; y++)
        {
            var row = pixels.AsSpan(y * width, width);
            int first = row.IndexOfAnyExcept((byte)0);
            if (first < 0) continue;
            if (minY < 0) minY = y;
            maxY = y;
            minX = Math.Min(minX, first);
            maxX = Math.Max(maxX, row.LastIndexOfAnyExcept((byte)0));
        }
        return minY < 0 ? null : [minX, minY, maxX + 1, maxY + 1];
    }

    public static void FlipHorizontal(DataSample s)
    {
        RequireBytes(s, "RandomFlip");
        int h = s.Height, w = s.Width;
        s.Image = ImageOps.FlipHorizontal(s.Image, h, w, 3);
        if (s.LabelMap is not null) s.LabelMap = ImageOps.FlipHorizontal(s.LabelMap, h, w, 1);
        if (s.Masks is not null)
            for (int i = 0; i < s.Masks.Count; i++)
                s.Masks[i] = Moved(s.Masks[i], h, w, Outlines.FlipHorizontal(s.Masks[i].Outlines, w), pixels => ImageOps.FlipHorizontal(pixels, h, w, 1));
        var b = s.Boxes;
        for (int i = 0; i < b.Length; i += 4)
        {
            float x1 = b[i], x2 = b[i + 2];
            b[i] = w - x2;
            b[i + 2] = w - x1;
        }
        s.Flipped = !s.Flipped;
    }
}
