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
}
