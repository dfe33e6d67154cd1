using NUnit.Framework;
using OpenCvSharp;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tests.Eval;

public class ReportChartsTests
{
    [Test]
    public void AnUndefinedBarIsDrawnUnlikeAZeroOne()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-bars-").FullName;
        try
        {
            string undefined = Path.Combine(dir, "undefined.png"), zero = Path.Combine(dir, "zero.png");
            ReportCharts.SaveBars(undefined, "IoU", "class", "IoU (%)", ["a", "b", "c"], [50, double.NaN, 0]);
            ReportCharts.SaveBars(zero, "IoU", "class", "IoU (%)", ["a", "b", "c"], [50, 0, 0]);
            using var withUndefined = Cv2.ImRead(undefined);
            using var withZero = Cv2.ImRead(zero);
            Assert.That((withUndefined.Cols, withUndefined.Rows), Is.EqualTo((withZero.Cols, withZero.Rows)));
            // The grey stub (LightGray, 211·211·211) is drawn for the undefined class only; the labels differ too, but a
            // chart that changed only its text would not have the block.
            static int Grey(Mat image)
            {
                using var mask = new Mat();
                Cv2.InRange(image, new Scalar(211, 211, 211), new Scalar(211, 211, 211), mask);
                return Cv2.CountNonZero(mask);
            }
            // Antialiased edges give the zero chart a few such pixels; the stub is a block of hundreds.
            Assert.That(Grey(withUndefined), Is.GreaterThan(Grey(withZero) + 500), "a class without ground truth is not drawn as a class always missed");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void PerClassTableIsInPercentWithNanForAbsentClasses()
    {
        double[] none = [];
        var result = new SegmentationResult(0.9, 0.5, 0.6, 0, 0, 0, 0, 0, [0.25, double.NaN, 0.75], [0.5, double.NaN, 1.0], none, none, none, none);
        var lines = SegmentationReport.PerClassTable(result, ["wall", "sky", "building"]).Split('\n');
        Assert.That(lines, Is.EqualTo(new[]
        {
            "per class results:",
            "Class        IoU     Acc",
            "wall       25.00   50.00",
            "sky          nan     nan",
            "building   75.00  100.00",
        }));
    }
}
