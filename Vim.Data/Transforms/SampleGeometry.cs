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
    /// Cuts the window [x0, x0+cropW) × [y0, y0+cropH). Boxes are shifted and clipped; instances whose box
    /// or mask becomes empty are removed.
    /// </summary>
    public static void CropTo(DataSample s, int y0, int x0, int cropH, int cropW)
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
            b[k] = Math.Clamp(b[k] - x0, 0, cropW); b[k + 2] = Math.Clamp(b[k + 2] - x0, 0, cropW);
            b[k + 1] = Math.Clamp(b[k + 1] - y0, 0, cropH); b[k + 3] = Math.Clamp(b[k + 3] - y0, 0, cropH);
            keep[i] = b[k + 2] > b[k] && b[k + 3] > b[k + 1];
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
                    // Inside the image (an uncut annotation's outline may stray past its border); empty once there, it goes:
                    // a zero-area ground-truth box would match every anchor as a low-quality match.
                    if (Outlines.Extent(cut) is { } extent)
                    {
                        b[4 * i] = Math.Clamp(extent[0], 0, cropW); b[4 * i + 2] = Math.Clamp(extent[2], 0, cropW);
                        b[4 * i + 1] = Math.Clamp(extent[1], 0, cropH); b[4 * i + 3] = Math.Clamp(extent[3], 0, cropH);
                    }
                    keep[i] = b[4 * i + 2] - b[4 * i] > BoxEpsilon && b[4 * i + 3] - b[4 * i + 1] > BoxEpsilon && cut.Count > 0;
                    continue;
                }
                if (cropping) s.Masks[i] = new InstanceMask(cropH, cropW, ImageOps.Crop(s.Masks[i].Pixels, w, 1, y0, x0, cropH, cropW));
                // An instance whose mask is empty (cut away, or too thin to survive a downscale) would train the mask
                // head on an all-zero target for a foreground RoI: dropped, as mmdet's empty-mask filter and
                // detectron2's filter_empty_instances drop it, whether or not this crop cut anything.
                if (!cropping)
                    keep[i] = s.Masks[i].Pixels.AsSpan().IndexOfAnyExcept((byte)0) >= 0;
                // A cut object's box is its visible part's (ViTDet's recompute_boxes, mmdet's recompute_bbox), not the
                // clipped original, which for a cut diagonal or L-shaped object is far larger than what is left.
                else if (TightBox(s.Masks[i].Pixels, cropH, cropW) is { } tight) tight.CopyTo(b.AsSpan(4 * i, 4));
                else keep[i] = false;
            }
        }
        s.Height = cropH; s.Width = cropW;
        s.ContentHeight = cropH; s.ContentWidth = cropW;
        s.KeepInstances(keep);
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
