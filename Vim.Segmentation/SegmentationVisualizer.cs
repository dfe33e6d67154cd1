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
            ImageEncoder.WritePng(Path.Combine(dir, "pred", name + ".png"), indices);
        }
        else
        {
            using var indices = Mat.FromPixelData(height, width, MatType.CV_16UC1, prediction);
            ImageEncoder.WritePng(Path.Combine(dir, "pred", name + ".png"), indices);
        }
        using var colour = Colours(prediction, height, width, ignoreIndex: null);
        ImageEncoder.WritePng(Path.Combine(dir, "color", name + ".png"), colour);
        if (imagePath is not null) WriteOverlay(Path.Combine(dir, "overlay", name + ".png"), imagePath, prediction, height, width);
    }

    /// <summary>The prediction's colours blended on its image (<see cref="Overlay"/>), written as the PNG <paramref name="path"/>.</summary>
    public static void WriteOverlay(string path, string imagePath, ushort[] prediction, int height, int width)
    {
        // The pixel grid the prediction was made on (EXIF orientation ignored, as the datasets read it).
        using var image = ImageDecoder.ReadBgr(imagePath);
        if (image.Rows != height || image.Cols != width)
            throw new VimException($"{imagePath}: cannot overlay a {width}x{height} prediction on this image");
        using var overlay = Overlay(image, prediction, ignoreIndex: null);
        ImageEncoder.WritePng(path, overlay);
    }

    /// <summary>
    /// The largest class count whose submission PNGs fit in 8 bits: the ADE20k server reads 8-bit PNGs, and mmseg's
    /// IoUMetric(format_only) casts to uint8.
    /// </summary>
    public static int MaxSubmissionClasses(bool reduceZeroLabel) => reduceZeroLabel ? byte.MaxValue : byte.MaxValue + 1;

    /// <summary>
    /// A test-server PNG (8-bit, one channel): each pixel's class index, plus 1 with reduce_zero_label, as mmseg's
    /// IoUMetric(format_only) writes it, so 0 stays ADE20k's "other" and classes are 1..150 as in the dataset's own labels.
    /// </summary>
    public static void WriteSubmission(string path, ushort[] prediction, int height, int width, bool reduceZeroLabel)
    {
        int offset = reduceZeroLabel ? 1 : 0;
        var pixels = new byte[prediction.Length];
        for (int p = 0; p < pixels.Length; p++)
        {
            int value = prediction[p] + offset;
            if (value > byte.MaxValue) throw new ArgumentException($"{path}: class value {value} does not fit an 8-bit submission PNG", nameof(prediction));
            pixels[p] = (byte)value;
        }
        using var indices = Mat.FromPixelData(height, width, MatType.CV_8UC1, pixels);
        ImageEncoder.WritePng(path, indices);
    }

    /// <summary>Weight of the palette colour in an overlay (the image keeps the rest).</summary>
    public const double OverlayOpacity = 0.5;

    /// <summary>
    /// The image blended with the label map's palette colours (<see cref="OverlayOpacity"/>), as a new BGR Mat the
    /// caller disposes. Pixels labelled <paramref name="ignoreIndex"/> are left as the image: they carry no class.
    /// </summary>
    /// <param name="bgr">8-bit BGR image of the label map's size.</param>
    public static Mat Overlay(Mat bgr, ushort[] labels, int? ignoreIndex)
    {
        if (bgr.Type() != MatType.CV_8UC3) throw new ArgumentException($"the image must be 8-bit BGR, got {bgr.Type()}.", nameof(bgr));
        if (labels.Length != bgr.Rows * bgr.Cols)
            throw new ArgumentException($"{labels.Length} labels for a {bgr.Cols}x{bgr.Rows} image.", nameof(labels));
        using var colour = Colours(labels, bgr.Rows, bgr.Cols, ignoreIndex);
        var overlay = new Mat();
        Cv2.AddWeighted(bgr, 1 - OverlayOpacity, colour, OverlayOpacity, 0, overlay);
        if (ignoreIndex is int ignore && Array.IndexOf(labels, (ushort)ignore) >= 0)
        {
            using var ignored = Mat.FromPixelData(bgr.Rows, bgr.Cols, MatType.CV_8UC1, Array.ConvertAll(labels, v => v == ignore ? (byte)1 : (byte)0));
            bgr.CopyTo(overlay, ignored);
        }
        return overlay;
    }

    /// <summary>The label map in palette colours (BGR); <paramref name="ignoreIndex"/> pixels black.</summary>
    private static Mat Colours(ushort[] labels, int height, int width, int? ignoreIndex)
    {
        int max = labels.Length == 0 ? 0 : labels.Max();
        var lookup = new byte[(max + 1) * 3];
        for (int k = 0; k <= max; k++)
        {
            if (k == ignoreIndex) continue;
            var (r, g, b) = Colour(k);
            (lookup[3 * k], lookup[3 * k + 1], lookup[3 * k + 2]) = (b, g, r);
        }
        var bgr = new byte[height * width * 3];
        for (int p = 0; p < labels.Length; p++)
        {
            int k = labels[p];
            (bgr[3 * p], bgr[3 * p + 1], bgr[3 * p + 2]) = (lookup[3 * k], lookup[3 * k + 1], lookup[3 * k + 2]);
        }
        // The clone owns its pixels, so the array need not outlive the call.
        using var view = Mat.FromPixelData(height, width, MatType.CV_8UC3, bgr);
        return view.Clone();
    }
}
