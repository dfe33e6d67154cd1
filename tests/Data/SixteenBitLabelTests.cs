using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;
using Vim.Data.Loading;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

/// <summary>Datasets with more than 255 classes: 16-bit label PNGs through the dataset, the loader and the metric.</summary>
public class SixteenBitLabelTests
{
    private const int Classes = 300;
    private const int Ignore = 65535;

    /// <summary>Row-major 2×4 label map: classes on both sides of 255 and 256, the top class, and one ignored pixel.</summary>
    private static readonly ushort[] Labels = [0, 255, 256, 299, Ignore, 299, 7, 7];

    private static IReadOnlyList<string> Names(int count) => Enumerable.Range(0, count).Select(i => $"class{i}").ToArray();

    private static DataTestFiles Fixture(ushort[] labels)
    {
        var files = new DataTestFiles();
        files.WriteRgb(Path.Combine("img", "a.png"), 2, 4, (y, x) => ((byte)(10 * x), (byte)(10 * y), 5));
        using var mat = new Mat(2, 4, MatType.CV_16UC1);
        for (int p = 0; p < labels.Length; p++) mat.Set(p / 4, p % 4, labels[p]);
        files.Write(Path.Combine("ann", "a.png"), mat);
        return files;
    }

    private static SegmentationFolderDataset Dataset(DataTestFiles files, int classes = Classes, int ignore = Ignore) => new(new SegmentationFolderOptions
    {
        ImageDir = files.PathOf("img"),
        AnnotationDir = files.PathOf("ann"),
        ImageSuffix = ".png",
        AnnotationSuffix = ".png",
        ClassNames = Names(classes),
        IgnoreIndex = ignore,
    });

    [Test]
    public void SixteenBitLabelsRoundTripThroughDatasetLoaderAndMetric()
    {
        using var files = Fixture(Labels);
        var dataset = Dataset(files);
        Assert.That(dataset.Load(0).LabelMap, Is.EqualTo(Labels), "16-bit values read unchanged");

        // Pad 2×4 → 3×5 with the ignore index: the batch holds the labels at the top-left and 65535 elsewhere.
        var pipeline = new TransformPipeline(new Normalize(new NormalizeOptions()), new Pad(new PadOptions { Size = [3, 5], SegPadValue = Ignore }));
        var loader = new DataLoader(dataset, pipeline, new LoaderOptions { BatchSize = 1, Kind = BatchKind.Segmentation, Shuffle = false, SegPadValue = Ignore });
        long[] batchLabels;
        using (var batch = loader.Epoch(0).Single())
        {
            Assert.That(batch.Labels!.shape, Is.EqualTo(new long[] { 1, 3, 5 }));
            batchLabels = batch.Labels.data<long>().ToArray();
        }
        var expected = new long[]
        {
            0, 255, 256, 299, Ignore,
            Ignore, 299, 7, 7, Ignore,
            Ignore, Ignore, Ignore, Ignore, Ignore,
        };
        Assert.That(batchLabels, Is.EqualTo(expected));

        // Back to the content window, then scored against a hand-made prediction.
        var label = new ushort[8];
        for (int p = 0; p < 8; p++) label[p] = (ushort)batchLabels[p / 4 * 5 + p % 4];
        ushort[] prediction = [0, 256, 256, 299, 5, 0, 7, 299];
        var metric = new SegmentationMetric(Classes, Ignore);
        metric.Update(prediction, label);
        // Pixel by pixel (label → prediction): 0→0, 255→256, 256→256, 299→299, ignored, 299→0, 7→7, 7→299.
        Assert.That((metric.Confusion(0, 0), metric.Confusion(255, 256), metric.Confusion(256, 256), metric.Confusion(299, 299),
            metric.Confusion(299, 0), metric.Confusion(7, 7), metric.Confusion(7, 299)), Is.EqualTo((1L, 1L, 1L, 1L, 1L, 1L, 1L)));
        Assert.That(Enumerable.Range(0, Classes).Sum(l => Enumerable.Range(0, Classes).Sum(p => metric.Confusion(l, p))), Is.EqualTo(7),
            "the ignored pixel (predicted 5) is counted nowhere");
        var result = metric.Compute();
        // IoU = inter / (pred + label − inter): class 0: 1/(2+1−1); 255: 0/(0+1); 256: 1/(2+1−1); 299: 1/(2+2−1); 7: 1/(1+2−1).
        Assert.That(result.IoU[0], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(result.IoU[255], Is.EqualTo(0.0));
        Assert.That(result.IoU[256], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(result.IoU[299], Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(result.IoU[7], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(double.IsNaN(result.IoU[5]), "a class predicted only on an ignored pixel is undefined");
        Assert.That(result.MIoU, Is.EqualTo((0.5 + 0 + 0.5 + 1.0 / 3 + 0.5) / 5).Within(1e-12));
        Assert.That(result.AAcc, Is.EqualTo(4.0 / 7).Within(1e-12));
    }

    [Test]
    public void ValuesOutsideTheClassesAndAnIgnoreIndexInsideThemAreErrors()
    {
        using (var files = Fixture([0, 1, 2, 300, 4, 5, 6, 7]))
        {
            var e = Assert.Throws<VimException>(() => Dataset(files).Load(0))!;
            Assert.That(e.Message, Does.Contain(Path.Combine("ann", "a.png")).And.Contain("label value 300").And.Contain("x=3, y=0")
                .And.Contain("0..299 or 65535"));
        }
        using (var files = Fixture(Labels))
        {
            var e = Assert.Throws<VimException>(() => Dataset(files, ignore: 255))!;
            Assert.That(e.Message, Does.Contain("ignore index 255").And.Contain("0..299"));
            // Fewer than 255 classes keep the default 255, and 16-bit files with small values load like 8-bit ones.
            var small = Dataset(files, classes: 8, ignore: 255);
            var e2 = Assert.Throws<VimException>(() => small.Load(0))!;
            Assert.That(e2.Message, Does.Contain("label value 256"), "first out-of-range pixel of the 16-bit file");
        }
    }
}
