using OpenCvSharp;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>Geometric changes applied identically to every part of a sample.</summary>
internal static class SampleGeometry
{
    public static void RequireBytes(DataSample s, string transform)
    {
        if (s.NormalizedImage is not null)
            throw new InvalidOperationException($"{transform} must run before Normalize (the image is already a float tensor).");
    }

    /// <summary>Bilinear for the image, nearest for masks and label maps (labels must not blend).</summary>
    public static void ResizeTo(DataSample s, int newH, int newW)
    {
        RequireBytes(s, "Resize");
        if (newH <= 0 || newW <= 0) throw new ArgumentException($"resize target {newW}x{newH} must be positive.");
        int h = s.Height, w = s.Width;
        if (newH == h && newW == w) return;
        float sx = (float)newW / w, sy = (float)newH / h;
        s.Image = ImageOps.Resize(s.Image, h, w, 3, newH, newW, InterpolationFlags.Linear);
        if (s.LabelMap is not null) s.LabelMap = ImageOps.ResizeLabels(s.LabelMap, h, w, newH, newW);
        if (s.Masks is not null)
            for (int i = 0; i < s.Masks.Count; i++)
                s.Masks[i] = new InstanceMask(newH, newW, ImageOps.Resize(s.Masks[i].Pixels, h, w, 1, newH, newW, InterpolationFlags.Nearest));
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
        if (y0 == 0 && x0 == 0 && cropH == h && cropW == w) return;
        s.Image = ImageOps.Crop(s.Image, w, 3, y0, x0, cropH, cropW);
        if (s.LabelMap is not null) s.LabelMap = ImageOps.Crop(s.LabelMap, w, 1, y0, x0, cropH, cropW);
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
                var cropped = new InstanceMask(cropH, cropW, ImageOps.Crop(s.Masks[i].Pixels, w, 1, y0, x0, cropH, cropW));
                s.Masks[i] = cropped;
                keep[i] = cropped.Pixels.AsSpan().IndexOfAnyExcept((byte)0) >= 0;
            }
        }
        s.Height = cropH; s.Width = cropW;
        s.ContentHeight = cropH; s.ContentWidth = cropW;
        s.KeepInstances(keep);
    }

    public static void FlipHorizontal(DataSample s)
    {
        RequireBytes(s, "RandomFlip");
        int h = s.Height, w = s.Width;
        s.Image = ImageOps.FlipHorizontal(s.Image, h, w, 3);
        if (s.LabelMap is not null) s.LabelMap = ImageOps.FlipHorizontal(s.LabelMap, h, w, 1);
        if (s.Masks is not null)
            for (int i = 0; i < s.Masks.Count; i++)
                s.Masks[i] = new InstanceMask(h, w, ImageOps.FlipHorizontal(s.Masks[i].Pixels, h, w, 1));
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
