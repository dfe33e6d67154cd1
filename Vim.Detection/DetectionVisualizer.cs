using Vim.Data.Datasets;
using OpenCvSharp;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// Draws detections, or a sample's ground truth, onto an image: each instance mask filled semi-transparently with its
/// class colour and outlined, the box outlined, and a label ("class score" for detections, "class" for ground truth) on
/// a filled tag of the class colour (black or white text, whichever contrasts with the tag, so it reads on any
/// background). Masks are drawn first, then outlines, then labels, each in drawing order (detections by ascending
/// score, so the most confident ends on top). Crowd regions of the ground truth (which the losses ignore) are drawn in
/// <see cref="CrowdColour"/> with a dashed box, no mask outline, and "class (crowd)".
/// </summary>
public static class DetectionVisualizer
{
    /// <summary>Weight of the class colour inside a mask (the image keeps the rest).</summary>
    public const double MaskOpacity = 0.5;

    /// <summary>The colour (RGB) of crowd regions, whatever their class: a light grey that is no class colour.</summary>
    public static readonly (byte R, byte G, byte B) CrowdColour = (200, 200, 200);

    /// <summary>Length in pixels of each dash, and of each gap, of a crowd region's box at line thickness 1 (scaled with it).</summary>
    public const int DashLength = 4;

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

    /// <summary>One instance as it is drawn: its box (xyxy pixels), colour, tag text, mask (0/1 bytes at the image size) and style.</summary>
    private sealed record DrawnInstance(double X0, double Y0, double X1, double Y1, (byte R, byte G, byte B) Colour, string Label, byte[]? Mask, bool Crowd);

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
        RequireImage(bgr, detections.ImageHeight, detections.ImageWidth, "detections refer to");
        if (detections.Classes is null || detections.Scores is null)
            throw new ArgumentException("DetectionVisualizer: detections need classes and scores.", nameof(detections));
        if (detections.Count == 0) return 0;

        using var scope = NewDisposeScope();
        var scores = detections.Scores.cpu().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var order = Enumerable.Range(0, scores.Length).Where(i => scores[i] >= scoreThreshold).OrderBy(i => scores[i]).ToArray();
        if (order.Length == 0) return 0;
        var boxes = detections.Boxes.Tensor.cpu().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var classes = detections.Classes.cpu().to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        RequireNames(classes, classNames);
        var instances = order.Select(i => new DrawnInstance(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], Colour((int)classes[i]),
            $"{classNames[(int)classes[i]]} {scores[i]:0.00}",
            detections.Masks is null ? null : detections.Masks[i].cpu().gt(0).to_type(ScalarType.Byte).contiguous().data<byte>().ToArray(),
            Crowd: false)).ToList();
        DrawInstances(bgr, instances);
        return order.Length;
    }

    /// <summary>
    /// Draws the managed detections of a <see cref="Detector"/> scoring at least <paramref name="scoreThreshold"/> onto
    /// <paramref name="bgr"/> (8-bit, 3 channels, the detections' image size) in place, as <see cref="Draw(Mat, Instances, IReadOnlyList{string}, double)"/>
    /// draws a model's output (labels from the detections' category names); returns how many were drawn.
    /// </summary>
    public static int Draw(Mat bgr, ImageDetections detections, double scoreThreshold)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(detections);
        RequireImage(bgr, detections.Height, detections.Width, "detections refer to");
        var found = detections.Detections;
        // Scores compared and printed as doubles, as the tensor path reads them, so both draw the same pixels.
        var order = Enumerable.Range(0, found.Count).Where(i => (double)found[i].Score >= scoreThreshold).OrderBy(i => found[i].Score).ToArray();
        var instances = order.Select(i => found[i]).Select(d => new DrawnInstance(d.X1, d.Y1, d.X2, d.Y2, Colour(d.ClassIndex),
            $"{d.CategoryName} {(double)d.Score:0.00}", d.MaskBitmap(), Crowd: false)).ToList();
        DrawInstances(bgr, instances);
        return order.Length;
    }

    /// <summary>
    /// Draws a sample's ground-truth instances (boxes, masks when the sample carries them, class names) onto
    /// <paramref name="bgr"/> (8-bit, 3 channels, the sample's current size) in place: crowd regions first, in their
    /// distinct style, then the other instances in the sample's order. Returns how many were drawn.
    /// </summary>
    public static int DrawGroundTruth(Mat bgr, DataSample sample, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(sample);
        RequireImage(bgr, sample.Height, sample.Width, "the sample is");
        RequireNames(sample.Labels.Select(l => (long)l), classNames);
        var order = Enumerable.Range(0, sample.InstanceCount).OrderBy(i => sample.IsCrowd[i] ? 0 : 1).ToList();
        var instances = order.Select(i =>
        {
            bool crowd = sample.IsCrowd[i];
            var name = classNames[sample.Labels[i]];
            return new DrawnInstance(sample.Boxes[4 * i], sample.Boxes[4 * i + 1], sample.Boxes[4 * i + 2], sample.Boxes[4 * i + 3],
                crowd ? CrowdColour : Colour(sample.Labels[i]), crowd ? $"{name} (crowd)" : name, sample.Masks?[i].Pixels, crowd);
        }).ToList();
        DrawInstances(bgr, instances);
        return instances.Count;
    }

    private static void RequireImage(Mat bgr, long height, long width, string what)
    {
        if (bgr.Type() != MatType.CV_8UC3)
            throw new ArgumentException($"DetectionVisualizer: the image must be 8-bit BGR, got {bgr.Type()}.", nameof(bgr));
        if (bgr.Rows != height || bgr.Cols != width)
            throw new ArgumentException($"DetectionVisualizer: {what} a {width}x{height} image, the image is {bgr.Cols}x{bgr.Rows}.", nameof(bgr));
    }

    private static void RequireNames(IEnumerable<long> classes, IReadOnlyList<string> classNames)
    {
        foreach (var c in classes)
            if (c < 0 || c >= classNames.Count)
                throw new ArgumentException($"DetectionVisualizer: class index {c} has no name ({classNames.Count} class names given).", nameof(classNames));
    }

    /// <summary>Masks, then mask outlines, then boxes, then labels, each pass in list order.</summary>
    private static void DrawInstances(Mat bgr, IReadOnlyList<DrawnInstance> instances)
    {
        int height = bgr.Rows, width = bgr.Cols, thickness = LineThickness(height, width);
        var masks = new List<(DrawnInstance Instance, Mat Mask)>();
        try
        {
            foreach (var instance in instances)
            {
                if (instance.Mask is null) continue;
                // The view pins the array; the clone owns its pixels, so the view can go at once.
                using var view = Mat.FromPixelData(height, width, MatType.CV_8UC1, instance.Mask);
                masks.Add((instance, view.Clone()));
            }
            foreach (var (instance, mask) in masks)
            {
                using var solid = new Mat(height, width, MatType.CV_8UC3, Bgr(instance.Colour));
                using var blended = new Mat();
                Cv2.AddWeighted(bgr, 1 - MaskOpacity, solid, MaskOpacity, 0, blended);
                blended.CopyTo(bgr, mask);
            }
            // A crowd region's outline is its dashed box alone: a solid mask contour along the box would fill the dashes' gaps.
            foreach (var (instance, mask) in masks.Where(m => !m.Instance.Crowd))
            {
                Cv2.FindContours(mask, out var contours, out _, RetrievalModes.External, ContourApproximationModes.ApproxNone);
                Cv2.DrawContours(bgr, contours, -1, Bgr(instance.Colour), thickness, LineTypes.Link8);
            }
        }
        finally
        {
            foreach (var (_, mask) in masks) mask.Dispose();
        }

        foreach (var instance in instances)
        {
            var (topLeft, bottomRight) = BoxCorners(instance, height, width);
            if (instance.Crowd) DashedRectangle(bgr, topLeft, bottomRight, Bgr(instance.Colour), thickness);
            else Cv2.Rectangle(bgr, topLeft, bottomRight, Bgr(instance.Colour), thickness, LineTypes.Link8);
        }
        foreach (var instance in instances)
            DrawLabel(bgr, instance.Label, BoxCorners(instance, height, width).TopLeft, instance.Colour);
    }

    /// <summary>
    /// The rectangle's outline in dashes of <see cref="DashLength"/> × thickness pixels with gaps as long, each side
    /// starting with a dash at its first corner.
    /// </summary>
    private static void DashedRectangle(Mat bgr, Point topLeft, Point bottomRight, Scalar colour, int thickness)
    {
        int dash = DashLength * thickness;
        void Side(Point from, int dx, int dy, int length)
        {
            for (int start = 0; start < length; start += 2 * dash)
            {
                int stop = Math.Min(start + dash, length) - 1;
                Cv2.Line(bgr, new Point(from.X + dx * start, from.Y + dy * start), new Point(from.X + dx * stop, from.Y + dy * stop), colour, thickness, LineTypes.Link8);
            }
        }
        int w = bottomRight.X - topLeft.X + 1, h = bottomRight.Y - topLeft.Y + 1;
        Side(topLeft, 1, 0, w);
        Side(new Point(topLeft.X, bottomRight.Y), 1, 0, w);
        Side(topLeft, 0, 1, h);
        Side(new Point(bottomRight.X, topLeft.Y), 0, 1, h);
    }

    /// <summary>Reads <paramref name="imagePath"/>, draws the detections and writes the PNG <paramref name="outputPath"/> (atomically).</summary>
    public static int WriteOverlay(string imagePath, Instances detections, IReadOnlyList<string> classNames, double scoreThreshold, string outputPath) =>
        WriteOverlay(imagePath, outputPath, image => Draw(image, detections, classNames, scoreThreshold));

    /// <summary>
    /// Reads <paramref name="imagePath"/>, draws a <see cref="Detector"/>'s detections and writes the PNG <paramref name="outputPath"/>
    /// (atomically); with <paramref name="patches"/> (a sliced prediction's, <see cref="SlicedDetection.Patches"/>) their outlines first.
    /// </summary>
    public static int WriteOverlay(string imagePath, ImageDetections detections, double scoreThreshold, string outputPath,
        IReadOnlyList<ImagePatch>? patches = null) =>
        WriteOverlay(imagePath, outputPath, image =>
        {
            if (patches is not null) DrawPatches(image, patches);
            return Draw(image, detections, scoreThreshold);
        });

    /// <summary>The colour (RGB) of patch outlines: white, no class colour.</summary>
    public static readonly (byte R, byte G, byte B) PatchColour = (255, 255, 255);

    /// <summary>
    /// Outlines each patch of a sliced prediction, dashed in <see cref="PatchColour"/> (as crowd regions are dashed: not a
    /// detection), so where patches overlap and where an object was cut shows.
    /// </summary>
    public static void DrawPatches(Mat bgr, IReadOnlyList<ImagePatch> patches)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(patches);
        int thickness = LineThickness(bgr.Rows, bgr.Cols);
        foreach (var patch in patches)
        {
            if (!patch.LiesWithin(bgr.Rows, bgr.Cols))
                throw new ArgumentException($"DetectionVisualizer: the patch {patch} does not lie within the {bgr.Cols}x{bgr.Rows} image.", nameof(patches));
            DashedRectangle(bgr, new Point(patch.Left, patch.Top), new Point(patch.Left + patch.Width - 1, patch.Top + patch.Height - 1), Bgr(PatchColour), thickness);
        }
    }

    private static int WriteOverlay(string imagePath, string outputPath, Func<Mat, int> draw)
    {
        // Same decoding as the datasets (EXIF orientation ignored), so boxes land where the model saw them.
        using var image = ImageDecoder.ReadBgr(imagePath);
        int drawn = draw(image);
        ImageEncoder.WritePng(outputPath, image);
        return drawn;
    }

    /// <summary>
    /// The box's pixel rectangle (inclusive corners): a box [x0, x1) in continuous coordinates covers
    /// the pixel columns round(x0) .. round(x1) − 1, clipped to the image.
    /// </summary>
    private static (Point TopLeft, Point BottomRight) BoxCorners(DrawnInstance box, int height, int width)
    {
        int x0 = Math.Clamp((int)Math.Round(box.X0), 0, width - 1), y0 = Math.Clamp((int)Math.Round(box.Y0), 0, height - 1);
        int x1 = Math.Clamp((int)Math.Round(box.X1) - 1, x0, width - 1), y1 = Math.Clamp((int)Math.Round(box.Y1) - 1, y0, height - 1);
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
        Cv2.Rectangle(bgr, tag, Bgr(colour), thickness: -1);
        // Relative luminance (Rec. 709) decides the text colour for contrast with the tag.
        double luminance = (0.2126 * colour.R + 0.7152 * colour.G + 0.0722 * colour.B) / 255.0;
        var textColour = luminance > 0.5 ? new Scalar(0, 0, 0) : new Scalar(255, 255, 255);
        // Drawing into a view of the tag clips the glyphs to it.
        using var tagView = new Mat(bgr, tag);
        Cv2.PutText(tagView, text, new Point(pad, pad + size.Height), font, fontScale, textColour, textThickness, LineTypes.AntiAlias);
    }

    private static Scalar Bgr((byte R, byte G, byte B) colour) => new(colour.B, colour.G, colour.R);
}
