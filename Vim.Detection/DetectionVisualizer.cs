using Vim.Data.Datasets;
using OpenCvSharp;
using Vim.Core;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// Draws detections onto an image: each instance mask filled semi-transparently with its class colour
/// and outlined, the box outlined, and a "class score" label on a filled tag of the class colour
/// (black or white text, whichever contrasts with the tag, so it reads on any background).
/// Masks are drawn first, then outlines, then labels, each in ascending score order, so the most
/// confident detection ends on top.
/// </summary>
public static class DetectionVisualizer
{
    /// <summary>Weight of the class colour inside a mask (the image keeps the rest).</summary>
    public const double MaskOpacity = 0.5;

    // Twenty well-separated colours (RGB), repeated for larger class counts: a fixed palette keeps a
    // class's colour the same across images and runs.
    private static readonly (byte R, byte G, byte B)[] Palette =
    [
        (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
        (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
        (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
        (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 225, 25), (128, 128, 128),
    ];

    /// <summary>The class's colour (RGB).</summary>
    public static (byte R, byte G, byte B) Colour(int classIndex) => Palette[((classIndex % Palette.Length) + Palette.Length) % Palette.Length];

    /// <summary>Outline thickness in pixels: 1 up to 600 px on the short side, thicker on large images so it stays visible.</summary>
    public static int LineThickness(int height, int width) => Math.Max(1, (int)Math.Round(Math.Min(height, width) / 600.0));

    /// <summary>
    /// Draws the detections scoring at least <paramref name="scoreThreshold"/> onto <paramref name="bgr"/>
    /// (8-bit, 3 channels, the detections' image size) in place; returns how many were drawn.
    /// </summary>
    /// <param name="detections">Boxes (xyxy pixels), classes and scores; masks (N, H, W) at the image size when present.</param>
    /// <param name="classNames">Label text per class index.</param>
    public static int Draw(Mat bgr, Instances detections, IReadOnlyList<string> classNames, double scoreThreshold)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(detections);
        if (bgr.Type() != MatType.CV_8UC3)
            throw new ArgumentException($"DetectionVisualizer: the image must be 8-bit BGR, got {bgr.Type()}.", nameof(bgr));
        if (bgr.Rows != detections.ImageHeight || bgr.Cols != detections.ImageWidth)
            throw new ArgumentException($"DetectionVisualizer: detections refer to a {detections.ImageWidth}x{detections.ImageHeight} image, the image is {bgr.Cols}x{bgr.Rows}.", nameof(detections));
        if (detections.Classes is null || detections.Scores is null)
            throw new ArgumentException("DetectionVisualizer: detections need classes and scores.", nameof(detections));
        if (detections.Count == 0) return 0;

        using var scope = NewDisposeScope();
        var scores = detections.Scores.cpu().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var order = Enumerable.Range(0, scores.Length).Where(i => scores[i] >= scoreThreshold).OrderBy(i => scores[i]).ToArray();
        if (order.Length == 0) return 0;
        var boxes = detections.Boxes.Tensor.cpu().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var classes = detections.Classes.cpu().to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        int height = bgr.Rows, width = bgr.Cols, thickness = LineThickness(height, width);
        foreach (var c in classes)
            if (c < 0 || c >= classNames.Count)
                throw new ArgumentException($"DetectionVisualizer: class index {c} has no name ({classNames.Count} class names given).", nameof(classNames));

        var masks = new List<(int Index, Mat Mask)>();
        try
        {
            if (detections.Masks is not null)
            {
                foreach (int i in order)
                {
                    var bits = detections.Masks[i].cpu().gt(0).to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
                    // The view pins the array; the clone owns its pixels, so the view can go at once.
                    using var view = Mat.FromPixelData(height, width, MatType.CV_8UC1, bits);
                    masks.Add((i, view.Clone()));
                }
                foreach (var (i, mask) in masks)
                {
                    using var solid = new Mat(height, width, MatType.CV_8UC3, Scalar(classes[i]));
                    using var blended = new Mat();
                    Cv2.AddWeighted(bgr, 1 - MaskOpacity, solid, MaskOpacity, 0, blended);
                    blended.CopyTo(bgr, mask);
                }
                foreach (var (i, mask) in masks)
                {
                    Cv2.FindContours(mask, out var contours, out _, RetrievalModes.External, ContourApproximationModes.ApproxNone);
                    Cv2.DrawContours(bgr, contours, -1, Scalar(classes[i]), thickness, LineTypes.Link8);
                }
            }
        }
        finally
        {
            foreach (var (_, mask) in masks) mask.Dispose();
        }

        foreach (int i in order)
        {
            var (topLeft, bottomRight) = BoxCorners(boxes, i, height, width);
            Cv2.Rectangle(bgr, topLeft, bottomRight, Scalar(classes[i]), thickness, LineTypes.Link8);
        }
        foreach (int i in order)
        {
            var (topLeft, _) = BoxCorners(boxes, i, height, width);
            DrawLabel(bgr, $"{classNames[(int)classes[i]]} {scores[i]:0.00}", topLeft, Colour((int)classes[i]));
        }
        return order.Length;
    }

    /// <summary>Reads <paramref name="imagePath"/>, draws the detections and writes the PNG <paramref name="outputPath"/> (atomically).</summary>
    public static int WriteOverlay(string imagePath, Instances detections, IReadOnlyList<string> classNames, double scoreThreshold, string outputPath)
    {
        // Same decoding as the datasets (EXIF orientation ignored), so boxes land where the model saw them.
        using var image = ImageDecoder.ReadBgr(imagePath);
        int drawn = Draw(image, detections, classNames, scoreThreshold);
        SavePng(image, outputPath);
        return drawn;
    }

    /// <summary>Writes a PNG through a temporary file and a rename.</summary>
    public static void SavePng(Mat image, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var tmp = path + ".tmp.png";
        if (!Cv2.ImWrite(tmp, image)) throw new VimException($"{path}: could not write the PNG");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// The box's pixel rectangle (inclusive corners): a box [x0, x1) in continuous coordinates covers
    /// the pixel columns round(x0) .. round(x1) − 1, clipped to the image.
    /// </summary>
    private static (Point TopLeft, Point BottomRight) BoxCorners(double[] boxes, int i, int height, int width)
    {
        int x0 = Math.Clamp((int)Math.Round(boxes[4 * i]), 0, width - 1), y0 = Math.Clamp((int)Math.Round(boxes[4 * i + 1]), 0, height - 1);
        int x1 = Math.Clamp((int)Math.Round(boxes[4 * i + 2]) - 1, x0, width - 1), y1 = Math.Clamp((int)Math.Round(boxes[4 * i + 3]) - 1, y0, height - 1);
        return (new Point(x0, y0), new Point(x1, y1));
    }

    /// <summary>A filled tag above the box's top-left corner (inside the box when there is no room above), kept inside the image.</summary>
    private static void DrawLabel(Mat bgr, string text, Point boxTopLeft, (byte R, byte G, byte B) colour)
    {
        const HersheyFonts font = HersheyFonts.HersheySimplex;
        const int pad = 2;
        double fontScale = Math.Max(0.3, Math.Min(bgr.Rows, bgr.Cols) / 1000.0);
        int textThickness = fontScale >= 0.8 ? 2 : 1;
        var size = Cv2.GetTextSize(text, font, fontScale, textThickness, out int baseline);
        int tagWidth = Math.Min(size.Width + 2 * pad, bgr.Cols), tagHeight = Math.Min(size.Height + baseline + 2 * pad, bgr.Rows);
        int top = boxTopLeft.Y - tagHeight >= 0 ? boxTopLeft.Y - tagHeight : Math.Min(boxTopLeft.Y, bgr.Rows - tagHeight);
        int left = Math.Clamp(boxTopLeft.X, 0, bgr.Cols - tagWidth);
        var tag = new Rect(left, top, tagWidth, tagHeight);
        Cv2.Rectangle(bgr, tag, new Scalar(colour.B, colour.G, colour.R), thickness: -1);
        // Relative luminance (Rec. 709) decides the text colour for contrast with the tag.
        double luminance = (0.2126 * colour.R + 0.7152 * colour.G + 0.0722 * colour.B) / 255.0;
        var textColour = luminance > 0.5 ? new Scalar(0, 0, 0) : new Scalar(255, 255, 255);
        // Drawing into a view of the tag clips the glyphs to it.
        using var tagView = new Mat(bgr, tag);
        Cv2.PutText(tagView, text, new Point(pad, pad + size.Height), font, fontScale, textColour, textThickness, LineTypes.AntiAlias);
    }

    private static Scalar Scalar(long classIndex)
    {
        var (r, g, b) = Colour((int)classIndex);
        return new Scalar(b, g, r);
    }
}
