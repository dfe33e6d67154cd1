using Vim.Data.Datasets;
using OpenCvSharp;
using Vim.Core;

namespace Vim.Segmentation;

/// <summary>Writes predicted label maps as PNGs: raw class indices, palette colours, and overlays on the image.</summary>
public static class SegmentationVisualizer
{
    /// <summary>
    /// A deterministic palette (the PASCAL VOC bit-interleaving scheme): class k's bits are spread
    /// over the high bits of R, G and B, so neighbouring ids get clearly different colours.
    /// </summary>
    public static (byte R, byte G, byte B) Colour(int classIndex)
    {
        int id = classIndex + 1, r = 0, g = 0, b = 0;
        for (int shift = 7; shift >= 0 && id > 0; shift--, id >>= 3)
        {
            r |= (id & 1) << shift;
            g |= ((id >> 1) & 1) << shift;
            b |= ((id >> 2) & 1) << shift;
        }
        return ((byte)r, (byte)g, (byte)b);
    }

    /// <summary>
    /// Writes &lt;dir&gt;/pred/NAME.png (class indices: 8-bit while every index fits, as ADE20k tools expect,
    /// 16-bit otherwise), &lt;dir&gt;/color/NAME.png and, if an image is given, &lt;dir&gt;/overlay/NAME.png.
    /// </summary>
    public static void Write(string dir, string name, ushort[] prediction, int height, int width, string? imagePath)
    {
        int max = prediction.Length == 0 ? 0 : prediction.Max();
        if (max <= byte.MaxValue)
        {
            using var indices = Mat.FromPixelData(height, width, MatType.CV_8UC1, Array.ConvertAll(prediction, v => (byte)v));
            Save(indices, Path.Combine(dir, "pred", name + ".png"));
        }
        else
        {
            using var indices = Mat.FromPixelData(height, width, MatType.CV_16UC1, prediction);
            Save(indices, Path.Combine(dir, "pred", name + ".png"));
        }
        var lookup = new byte[(max + 1) * 3];
        for (int k = 0; k <= max; k++)
        {
            var (r, g, b) = Colour(k);
            (lookup[3 * k], lookup[3 * k + 1], lookup[3 * k + 2]) = (b, g, r);
        }
        var bgr = new byte[height * width * 3];
        for (int p = 0; p < prediction.Length; p++)
        {
            int k = prediction[p];
            (bgr[3 * p], bgr[3 * p + 1], bgr[3 * p + 2]) = (lookup[3 * k], lookup[3 * k + 1], lookup[3 * k + 2]);
        }
        using var colour = Mat.FromPixelData(height, width, MatType.CV_8UC3, bgr);
        Save(colour, Path.Combine(dir, "color", name + ".png"));
        if (imagePath is null) return;
        // The pixel grid the prediction was made on (EXIF orientation ignored, as the datasets read it).
        using var image = ImageDecoder.ReadBgr(imagePath);
        if (image.Rows != height || image.Cols != width)
            throw new VimException($"{imagePath}: cannot overlay a {width}x{height} prediction on this image");
        using var overlay = new Mat();
        Cv2.AddWeighted(image, 0.5, colour, 0.5, 0, overlay);
        Save(overlay, Path.Combine(dir, "overlay", name + ".png"));
    }

    private static void Save(Mat mat, string path)
    {
        // NAME may hold subfolders (images paired by their path under the image folder).
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp.png";
        if (!Cv2.ImWrite(tmp, mat)) throw new VimException($"{path}: could not write the PNG");
        File.Move(tmp, path, overwrite: true);
    }
}
