using NUnit.Framework;
using OpenCvSharp;

namespace Vim.Tests.Foundation;

public class ImagingSmokeTests
{
    [Test]
    public void OpenCvWritesAndReadsAPngLosslessly()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vimdense-cv-{Guid.NewGuid():N}.png");
        try
        {
            using var image = new Mat(20, 30, MatType.CV_8UC3, Scalar.All(0));
            Cv2.Rectangle(image, new Rect(5, 4, 10, 6), new Scalar(10, 200, 30), thickness: -1);
            Assert.That(Cv2.ImWrite(path, image), Is.True);
            using var back = Cv2.ImRead(path, ImreadModes.Unchanged);
            Assert.That((back.Rows, back.Cols, back.Channels()), Is.EqualTo((20, 30, 3)));
            Assert.That(back.At<Vec3b>(4, 5), Is.EqualTo(new Vec3b(10, 200, 30)), "top-left corner of the filled rectangle");
            Assert.That(back.At<Vec3b>(9, 14), Is.EqualTo(new Vec3b(10, 200, 30)), "bottom-right corner (inclusive)");
            Assert.That(back.At<Vec3b>(10, 14), Is.EqualTo(new Vec3b(0, 0, 0)), "just below the rectangle");
            Assert.That(Cv2.CountNonZero(back.ExtractChannel(1)), Is.EqualTo(60));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void ScottPlotWritesAPngOfTheRequestedSize()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vimdense-plot-{Guid.NewGuid():N}.png");
        try
        {
            var plot = new ScottPlot.Plot();
            plot.Add.Scatter(new double[] { 0, 1, 2, 3 }, new double[] { 1, 0.5, 0.25, 0.125 });
            plot.Axes.Left.Label.Text = "loss";
            plot.SavePng(path, 321, 187);
            using var decoded = Cv2.ImRead(path, ImreadModes.Unchanged);
            Assert.That((decoded.Cols, decoded.Rows), Is.EqualTo((321, 187)));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
