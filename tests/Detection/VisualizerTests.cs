using NUnit.Framework;
using OpenCvSharp;
using Vim.Detection;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>DetectionVisualizer against pixel counts worked out from the drawing rules by hand.</summary>
public class VisualizerTests
{
    private static readonly string[] Names = ["red thing", "green thing"];

    // Box [20, 70) x [40, 80) covers pixel columns 20..69 and rows 40..79; the mask is the 30 x 20
    // block of columns 30..59, rows 50..69, strictly inside the box.
    private const int BoxX0 = 20, BoxY0 = 40, BoxX1 = 69, BoxY1 = 79;
    private const int MaskX0 = 30, MaskX1 = 59, MaskY0 = 50, MaskY1 = 69;

    private static Instances Detection(double score, int classIndex, int size = 100)
    {
        var mask = zeros(new long[] { 1, size, size }, ScalarType.Bool);
        mask[0, MaskY0..(MaskY1 + 1), MaskX0..(MaskX1 + 1)] = tensor(true);
        return new Instances(size, size, new Boxes(tensor(new float[] { 20, 40, 70, 80 }).reshape(1, 4)),
            tensor(new long[] { classIndex }), tensor(new float[] { (float)score }), mask);
    }

    private static bool Changed(Mat image, int y, int x)
    {
        var p = image.At<Vec3b>(y, x);
        return p.Item0 != 0 || p.Item1 != 0 || p.Item2 != 0;
    }

    [Test]
    public void DrawsExactlyTheMaskTheBoxOutlineAndALabelTagAboveTheBox()
    {
        using var scope = NewDisposeScope();
        using var image = new Mat(100, 100, MatType.CV_8UC3, Scalar.All(0));
        Assert.That(DetectionVisualizer.LineThickness(100, 100), Is.EqualTo(1));
        int drawn = DetectionVisualizer.Draw(image, Detection(0.9, classIndex: 0), Names, scoreThreshold: 0.3);
        Assert.That(drawn, Is.EqualTo(1));

        // Inside the box's pixel rectangle: the one-pixel outline (2·50 + 2·40 − 4 = 176 pixels) and
        // the 30·20 = 600 mask pixels, nothing else.
        int insideBox = 0;
        for (int y = BoxY0; y <= BoxY1; y++)
            for (int x = BoxX0; x <= BoxX1; x++)
                if (Changed(image, y, x)) insideBox++;
        Assert.That(insideBox, Is.EqualTo(176 + 600));

        var (r, g, b) = DetectionVisualizer.Colour(0);
        // Mask interior: half the class colour over black; the mask's border carries the opaque contour.
        var interior = image.At<Vec3b>(60, 45);
        Assert.That(interior.Item2, Is.EqualTo(r / 2.0).Within(1), "red channel, blended");
        Assert.That(interior.Item1, Is.EqualTo(g / 2.0).Within(1), "green channel, blended");
        Assert.That(interior.Item0, Is.EqualTo(b / 2.0).Within(1), "blue channel, blended");
        Assert.That(image.At<Vec3b>(MaskY0, 45), Is.EqualTo(new Vec3b(b, g, r)), "mask contour");
        Assert.That(image.At<Vec3b>(BoxY0 + 10, BoxX0), Is.EqualTo(new Vec3b(b, g, r)), "box outline");
        Assert.That(Changed(image, BoxY0 + 5, BoxX0 + 5), Is.False, "box interior outside the mask");

        // Outside the box: only the label tag, a filled rectangle sitting on the box's top-left corner.
        var outside = new List<(int Y, int X)>();
        for (int y = 0; y < 100; y++)
            for (int x = 0; x < 100; x++)
                if ((y < BoxY0 || y > BoxY1 || x < BoxX0 || x > BoxX1) && Changed(image, y, x)) outside.Add((y, x));
        Assert.That(outside, Is.Not.Empty, "a label is drawn");
        int top = outside.Min(p => p.Y), bottom = outside.Max(p => p.Y), left = outside.Min(p => p.X), right = outside.Max(p => p.X);
        Assert.That(bottom, Is.EqualTo(BoxY0 - 1), "the tag ends on the row above the box");
        Assert.That(left, Is.EqualTo(BoxX0), "the tag starts at the box's left edge");
        Assert.That(outside.Count, Is.EqualTo((bottom - top + 1) * (right - left + 1)), "the tag is filled (white text on a dark tag changes every pixel)");
        Assert.That(right - left + 1, Is.GreaterThan(20), "the tag is wide enough for 'red thing 0.90'");
    }

    [Test]
    public void ADetectionBelowTheScoreThresholdDrawsNothing()
    {
        using var scope = NewDisposeScope();
        using var image = new Mat(100, 100, MatType.CV_8UC3, new Scalar(10, 120, 200));
        using var original = image.Clone();
        int drawn = DetectionVisualizer.Draw(image, Detection(0.29, classIndex: 1), Names, scoreThreshold: 0.3);
        Assert.That(drawn, Is.Zero);
        using var difference = new Mat();
        Cv2.Absdiff(image, original, difference);
        Assert.That(Cv2.CountNonZero(difference.Reshape(1)), Is.Zero);
    }

    [Test]
    public void LabelMovesInsideTheBoxWhenThereIsNoRoomAbove()
    {
        using var scope = NewDisposeScope();
        using var image = new Mat(100, 100, MatType.CV_8UC3, Scalar.All(0));
        var detections = new Instances(100, 100, new Boxes(tensor(new float[] { 10, 0, 90, 60 }).reshape(1, 4)),
            tensor(new long[] { 0 }), tensor(new float[] { 0.8f }));
        DetectionVisualizer.Draw(image, detections, Names, 0.3);
        // Without masks: the outline (columns 10..89, rows 0..59) plus a tag hanging from the top edge inside it.
        for (int y = 60; y < 100; y++)
            for (int x = 0; x < 100; x++)
                Assert.That(Changed(image, y, x), Is.False, $"pixel ({x}, {y}) below the box");
        Assert.That(Changed(image, 5, 12), Is.True, "the tag fills the box's top-left corner");
        Assert.That(Changed(image, 30, 50), Is.False, "the box's middle is untouched");
    }

    [Test]
    public void RefusesDetectionsOfAnotherImageSize()
    {
        using var scope = NewDisposeScope();
        using var image = new Mat(80, 100, MatType.CV_8UC3, Scalar.All(0));
        var e = Assert.Throws<ArgumentException>(() => DetectionVisualizer.Draw(image, Detection(0.9, 0), Names, 0.3))!;
        Assert.That(e.Message, Does.Contain("100x100").And.Contain("100x80"));
    }
}
