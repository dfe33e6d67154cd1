using NUnit.Framework;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;

namespace Vim.Tests.Distributed;

/// <summary>The pieces a distributed evaluation is split and merged with.</summary>
public class EvaluationShareTests
{
    private sealed class NumberedImages(int count) : ISampleSource
    {
        public int Count => count;

        public DataSample Load(int index) => new(1000 + index, $"img{index}.png", new byte[3], 1, 1);
    }

    [TestCase(5, 2, new[] { 3, 2 })]
    [TestCase(7, 3, new[] { 3, 2, 2 })]
    [TestCase(2, 4, new[] { 1, 1, 0, 0 })]
    public void RanksShareTheImagesOnceEachWithoutPadding(int images, int ranks, int[] expectedCounts)
    {
        var source = new NumberedImages(images);
        var seen = new List<long>();
        for (int rank = 0; rank < ranks; rank++)
        {
            var share = new StridedSubset(source, rank, ranks);
            Assert.That(share.Count, Is.EqualTo(expectedCounts[rank]), $"rank {rank}");
            for (int i = 0; i < share.Count; i++)
            {
                var sample = share.Load(i);
                Assert.That(sample.ImageId - 1000, Is.EqualTo(share.SourceIndex(i)).And.EqualTo(rank + i * ranks));
                seen.Add(sample.ImageId);
            }
        }
        Assert.That(seen.Order(), Is.EqualTo(Enumerable.Range(1000, images).Select(i => (long)i)));
    }

    [Test]
    public void BadArgumentsAndIndicesAreRefused()
    {
        var source = new NumberedImages(3);
        Assert.That(() => new StridedSubset(source, 2, 2), Throws.ArgumentException.With.Message.Contains("offset 2 must be in 0..stride−1"));
        Assert.That(() => new StridedSubset(source, 0, 0), Throws.ArgumentException);
        Assert.That(() => new StridedSubset(source, 1, 2).Load(1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void SummedCountsOfTwoHalvesGiveTheMetricOfTheWhole()
    {
        // Three classes, ignore 255; the out-of-range prediction 7 and label 9 land in the one-sided counts.
        byte[][] predictions = [[0, 1, 2, 7, 1], [2, 2, 0, 1, 255], [1, 0, 0, 2, 2]];
        byte[][] labels = [[0, 1, 1, 2, 255], [2, 9, 0, 0, 1], [1, 1, 0, 2, 0]];
        var whole = new SegmentationMetric(3);
        var first = new SegmentationMetric(3);
        var second = new SegmentationMetric(3);
        for (int i = 0; i < 3; i++)
        {
            whole.Update(predictions[i], labels[i]);
            (i % 2 == 0 ? first : second).Update(predictions[i], labels[i]);
        }
        var a = first.ExportCounts();
        var b = second.ExportCounts();
        Assert.That(a, Has.Length.EqualTo(3 * 3 + 2 * 3));
        var merged = new SegmentationMetric(3);
        merged.ImportCounts(a.Zip(b, (x, y) => x + y).ToArray());
        Assert.That(merged.ExportCounts(), Is.EqualTo(whole.ExportCounts()));
        Assert.That(merged.Compute().MIoU, Is.EqualTo(whole.Compute().MIoU));
        // Hand count, as (image, pixel): label 0 predicted 0 at (0,0), (1,2), (2,2); predicted 1 at (1,3); predicted 2 at (2,4).
        Assert.That(new[] { merged.Confusion(0, 0), merged.Confusion(0, 1), merged.Confusion(0, 2) }, Is.EqualTo(new long[] { 3, 1, 1 }));
        Assert.That(() => merged.ImportCounts(new long[4]), Throws.ArgumentException.With.Message.Contains("expected 15 counts for 3 classes"));
    }
}
