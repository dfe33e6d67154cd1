using NUnit.Framework;
using OpenCvSharp;
using Vim.Data.Evaluation;
using Vim.Segmentation;

namespace Vim.Tests.Segmentation;

public class SegmentationVisualizerTests
{
    [Test]
    public void PredictionPngsAreEightBitWhileIndicesFitAndSixteenBitBeyond()
    {
        var dir = Directory.CreateTempSubdirectory("vim-seg-vis-").FullName;
        try
        {
            ushort[] small = [0, 3, 255, 1, 2, 3];
            ushort[] large = [0, 299, 256, 1, 2, 3];
            SegmentationVisualizer.Write(dir, "small", small, 2, 3, null);
            SegmentationVisualizer.Write(dir, "large", large, 2, 3, null);
            foreach (var (name, values, depth) in new[] { ("small", small, MatType.CV_8U), ("large", large, MatType.CV_16U) })
            {
                var path = Path.Combine(dir, "pred", name + ".png");
                using (var mat = Cv2.ImRead(path, ImreadModes.Unchanged))
                    Assert.That(mat.Depth(), Is.EqualTo(depth), name);
                Assert.That(SegmentationLabelMaps.Read(path, out int h, out int w), Is.EqualTo(values.Select(v => (int)v)), name);
                Assert.That((h, w), Is.EqualTo((2, 3)));
                Assert.That(File.Exists(Path.Combine(dir, "color", name + ".png")), name);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ImagesOfOneNameInTwoSubfoldersGetTwoPredictions()
    {
        using var files = new Vim.Tests.Data.DataTestFiles();
        var imageDir = files.PathOf("images", "validation");
        var first = SegmentationTester.OutputName(imageDir, Path.Combine(imageDir, "scene1", "0001.jpg"));
        var second = SegmentationTester.OutputName(imageDir, Path.Combine(imageDir, "scene2", "0001.jpg"));
        Assert.That((first, second), Is.EqualTo((Path.Combine("scene1", "0001"), Path.Combine("scene2", "0001"))));
        Assert.That(SegmentationTester.OutputName(imageDir, Path.Combine(imageDir, "0002.jpg")), Is.EqualTo("0002"));
        SegmentationVisualizer.Write(files.Root, first, [1, 1], 1, 2, null);
        SegmentationVisualizer.Write(files.Root, second, [2, 2], 1, 2, null);
        Assert.That(SegmentationLabelMaps.Read(files.PathOf("pred", "scene1", "0001.png"), out _, out _), Is.EqualTo(new[] { 1, 1 }));
        Assert.That(SegmentationLabelMaps.Read(files.PathOf("pred", "scene2", "0001.png"), out _, out _), Is.EqualTo(new[] { 2, 2 }));
    }

    [Test]
    public void OverlaysLineUpWithTheStoredPixelsOfAPhotoRotatedByExif()
    {
        using var files = new Vim.Tests.Data.DataTestFiles();
        var image = files.WriteJpegRotatedByExif("portrait.jpg", 4, 6, new Scalar(0, 0, 200));
        // The prediction is made on the stored 4×6 grid, as the datasets decode it.
        var prediction = new ushort[4 * 6];
        SegmentationVisualizer.Write(files.Root, "portrait", prediction, 4, 6, image);
        using var overlay = Cv2.ImRead(files.PathOf("overlay", "portrait.png"), ImreadModes.Unchanged);
        Assert.That((overlay.Rows, overlay.Cols), Is.EqualTo((4, 6)));
        // Half the image's red (≈ 200) plus half class 0's colour.
        using var colour = Cv2.ImRead(files.PathOf("color", "portrait.png"), ImreadModes.Unchanged);
        Assert.That(overlay.At<Vec3b>(2, 3).Item2, Is.EqualTo((200 + colour.At<Vec3b>(2, 3).Item2) / 2.0).Within(4));
    }
}
