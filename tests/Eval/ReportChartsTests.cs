using NUnit.Framework;
using OpenCvSharp;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tests.Eval;

public class ReportChartsTests
{
    /// <summary>Log-axis labels: decades over a wide span, 1-2-5 over one to two decades, every multiple within one.</summary>
    [TestCase(-3.0, 2.0, new[] { "0.001", "0.01", "0.1", "1", "10", "100" })]
    [TestCase(1.0, 2.5, new[] { "10", "20", "50", "100", "200" })]
    [TestCase(1.3, 1.95, new[] { "20", "30", "40", "50", "60", "70", "80", "90" })]
    public void LogAxisLabelsFollowTheSpan(double lowLog10, double highLog10, string[] expected)
    {
        var ticks = ReportCharts.LogTickMarks([lowLog10, highLog10]);
        var labels = ticks.Where(t => t.IsMajor).Select(t => t.Label).ToArray();
        Assert.That(labels, Is.EqualTo(expected));
        foreach (var tick in ticks.Where(t => t.IsMajor))
            Assert.That(Math.Pow(10, tick.Position), Is.EqualTo(double.Parse(tick.Label, System.Globalization.CultureInfo.InvariantCulture)).Within(1e-9).Percent,
                "each label names the value at its position");
    }

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
