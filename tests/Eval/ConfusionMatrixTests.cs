using NUnit.Framework;
using OpenCvSharp;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tests.Eval;

public class ConfusionMatrixTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vim-confusion-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// The segmentation matrix is the metric's own counts: its diagonal over the row sum is each class's Acc, over row +
    /// column − diagonal its IoU, and the trace over the total aAcc, all as <see cref="SegmentationMetric.Compute"/> gives
    /// them; and a brute-force count of the same maps (ignore pixels skipped) equals it cell by cell.
    /// </summary>
    [Test]
    public void DiagonalAndRowSumsAreTheMetricsIntersectionsAndAreas()
    {
        const int classes = 4, ignore = 255;
        var random = new Random(7);
        var metric = new SegmentationMetric(classes, ignore);
        var expected = new long[classes, classes];
        for (int image = 0; image < 3; image++)
        {
            // Class 3 is never a label (its row stays empty: Acc NaN) but is predicted, so its IoU is 0.
            var label = Enumerable.Range(0, 200).Select(_ => random.Next(10) == 0 ? ignore : random.Next(3)).ToArray();
            var pred = label.Select(l => random.Next(4) == 0 ? random.Next(classes) : l == ignore ? 0 : l).ToArray();
            metric.Update(pred, label);
            for (int i = 0; i < label.Length; i++)
                if (label[i] != ignore) expected[label[i], pred[i]]++;
        }
        string[] names = ["wall", "sky", "floor", "tree"];
        var matrix = metric.ToConfusionMatrix(names);
        var result = metric.Compute();
        Assert.That(matrix.Labels, Is.EqualTo(names));
        long total = 0, trace = 0;
        for (int c = 0; c < classes; c++)
        {
            long row = matrix.RowSum(c), column = 0;
            for (int t = 0; t < classes; t++)
            {
                column += matrix[t, c];
                Assert.That(matrix[c, t], Is.EqualTo(expected[c, t]), $"[{c}, {t}]");
            }
            long diagonal = matrix[c, c];
            total += row;
            trace += diagonal;
            if (row == 0) Assert.That(result.Acc[c], Is.NaN, $"Acc of class {c}, which no pixel is labelled");
            else Assert.That(result.Acc[c], Is.EqualTo((double)diagonal / row).Within(1e-15), $"Acc of class {c}");
            Assert.That(result.IoU[c], Is.EqualTo((double)diagonal / (row + column - diagonal)).Within(1e-15), $"IoU of class {c}");
        }
        Assert.That(matrix.RowSum(3), Is.Zero);
        Assert.That(result.AAcc, Is.EqualTo((double)trace / total).Within(1e-15));
    }

    /// <summary>Row percentages as both tools plot them: each row sums to 100, an empty row is NaN (their 0/0).</summary>
    [Test]
    public void RowPercentNormalisesEachGroundTruthRow()
    {
        var matrix = new ConfusionMatrix(["a", "b", "background"]);
        matrix.Add(0, 0, 3);
        matrix.Add(0, 2, 1);
        matrix.Add(2, 1, 5);
        var percent = matrix.RowPercent();
        Assert.That(new[] { percent[0, 0], percent[0, 1], percent[0, 2] }, Is.EqualTo(new[] { 75.0, 0, 25 }));
        Assert.That(new[] { percent[1, 0], percent[1, 1], percent[1, 2] }, Is.All.NaN);
        Assert.That(new[] { percent[2, 0], percent[2, 1], percent[2, 2] }, Is.EqualTo(new[] { 0.0, 100, 0 }));
    }

    /// <summary>Labels that need CSV quoting (commas, quotes, edge spaces) and counts beyond 32 bits survive a write and an independent parse.</summary>
    [Test]
    public void CsvRoundTripKeepsLabelsAndCounts()
    {
        string[] labels = ["traffic light", "a, b", "say \"hi\"", " padded ", "background"];
        var matrix = new ConfusionMatrix(labels);
        var random = new Random(3);
        for (int t = 0; t < labels.Length; t++)
            for (int p = 0; p < labels.Length; p++)
                matrix.Add(t, p, (t + p) % 3 == 0 ? 0 : random.NextInt64(1, 1L << 40));
        var path = Path.Combine(_dir, "m.csv");
        matrix.WriteCsv(path);
        var (corner, columns, rows, counts) = ConfusionCsv.Read(path);
        Assert.That(corner, Is.EqualTo(ConfusionMatrix.CsvCorner));
        Assert.That(columns, Is.EqualTo(labels));
        Assert.That(rows, Is.EqualTo(labels));
        for (int t = 0; t < labels.Length; t++)
            for (int p = 0; p < labels.Length; p++)
                Assert.That(counts[t, p], Is.EqualTo(matrix[t, p]), $"[{t}, {p}]");
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file left beside it");
    }

    /// <summary>
    /// The chart is drawn for a handful of classes (with values in the cells) and for ADE20k's 150 (colour only), grows
    /// with the class count, and draws a row without ground truth grey rather than as zeros.
    /// </summary>
    [Test]
    public void HeatmapIsDrawnForFewAndManyClassesWithEmptyRowsGrey()
    {
        static int Grey(string path)
        {
            using var image = Cv2.ImRead(path);
            using var mask = new Mat();
            Cv2.InRange(image, new Scalar(211, 211, 211), new Scalar(211, 211, 211), mask);
            return Cv2.CountNonZero(mask);
        }
        static (int Width, int Height) Size(string path)
        {
            EvalCliAndReportTests.AssertChart(path);
            using var image = Cv2.ImRead(path);
            return (image.Cols, image.Rows);
        }
        string[] five = ["cat", "dog", "bird", "traffic light", "background"];
        var full = new ConfusionMatrix(five);
        var emptyRow = new ConfusionMatrix(five);
        for (int t = 0; t < 5; t++)
        {
            full.Add(t, t, 4);
            full.Add(t, 4, 1);
            if (t != 3) emptyRow.Add(t, t, 4);
            if (t != 3) emptyRow.Add(t, 4, 1);
        }
        var (fullFiles, emptyFiles) = (ConfusionMatrixReport.Write(full, Path.Combine(_dir, "full"), "five"), ConfusionMatrixReport.Write(emptyRow, Path.Combine(_dir, "empty"), "five"));
        Assert.That(Size(fullFiles.Png), Is.EqualTo(Size(emptyFiles.Png)));
        Assert.That(Grey(emptyFiles.Png), Is.GreaterThan(Grey(fullFiles.Png) + 5000), "the row of a class without ground truth is a grey band");

        var ade = new ConfusionMatrix(Enumerable.Range(0, 150).Select(i => $"class {i}").ToList());
        for (int c = 0; c < 150; c++) ade.Add(c, (c * 7) % 150, 10);
        var adeFiles = ConfusionMatrixReport.Write(ade, Path.Combine(_dir, "ade"), "ADE20k");
        var (width, height) = Size(adeFiles.Png);
        Assert.That(width, Is.GreaterThanOrEqualTo(150 * 10), "at least 10 pixels a column");
        Assert.That(height, Is.GreaterThanOrEqualTo(150 * 10), "at least 10 pixels a row");
        Assert.That(Size(fullFiles.Png).Width, Is.LessThan(width));
        Assert.That(Path.GetFileName(adeFiles.Csv), Is.EqualTo("confusion_matrix.csv"));
        Assert.That(Path.GetFileName(adeFiles.Png), Is.EqualTo("confusion_matrix.png"));
    }
}
