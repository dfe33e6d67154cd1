using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;
using Vim.Data.Statistics;

namespace Vim.Tests.Data;

/// <summary>
/// <see cref="ParallelErrors.For(int, Action{int}, int)"/> and its overload with per-thread state: a loop over entries of
/// which several are bad names the first bad one, on every run, as a loop in order would; it runs each index once
/// otherwise, and a non-user failure stays an AggregateException. The loops over label maps that keep per-thread counts
/// (<c>vim eval seg</c>, <c>vim data stats</c>) name their first bad file likewise.
/// </summary>
public class ParallelErrorsTests
{
    private static bool IsBad(int i) => i >= 300 && i % 37 == 5;

    [Test]
    public void OfSeveralUserErrorsTheLowestIndexIsThrownOnEveryRun()
    {
        int expected = Enumerable.Range(0, 4000).First(IsBad);   // 301
        for (int run = 0; run < 25; run++)
        {
            var e = Assert.Throws<VimException>(() => ParallelErrors.For(4000, i =>
            {
                // Some work per item, so the threads' ranges interleave in time.
                Thread.SpinWait(2000);
                if (IsBad(i)) throw new VimException($"entry {i} is bad");
            }));
            Assert.That(e!.Message, Is.EqualTo($"entry {expected} is bad"), $"run {run}");
        }
    }

    [Test]
    public void WithoutErrorsEveryIndexRunsOnce()
    {
        var visits = new int[1000];
        ParallelErrors.For(visits.Length, i => Interlocked.Increment(ref visits[i]));
        Assert.That(visits, Is.All.EqualTo(1));
    }

    [Test]
    public void AFailureThatIsNotAUserErrorStaysAnAggregateException()
    {
        var e = Assert.Throws<AggregateException>(() => ParallelErrors.For(100, i =>
        {
            if (i == 42) throw new InvalidOperationException("a bug");
        }));
        Assert.That(e!.InnerExceptions.Single(), Is.TypeOf<InvalidOperationException>());
    }

    [Test]
    public void WithThreadStateEveryIndexIsCountedOnceAndEveryStateMerged()
    {
        long total = 0;
        int states = 0, merged = 0;
        ParallelErrors.For(1000, () =>
        {
            Interlocked.Increment(ref states);
            return new long[1];
        }, (i, local) =>
        {
            local[0] += i;
            return local;
        }, local =>
        {
            Interlocked.Add(ref total, local[0]);
            Interlocked.Increment(ref merged);
        }, maxThreads: 4);
        Assert.That(total, Is.EqualTo(999L * 1000 / 2));
        Assert.That(merged, Is.EqualTo(states));
    }

    [TestCase(2)]
    [TestCase(4)]
    [TestCase(8)]
    public void WithThreadStateTheLowestUserErrorIsThrownOnEveryRun(int threads)
    {
        for (int run = 0; run < 10; run++)
        {
            var e = Assert.Throws<VimException>(() => ParallelErrors.For(4000, () => 0, (i, local) =>
            {
                Thread.SpinWait(2000);
                if (IsBad(i)) throw new VimException($"entry {i} is bad");
                return local + 1;
            }, _ => { }, threads));
            Assert.That(e!.Message, Is.EqualTo("entry 301 is bad"), $"run {run}");
        }
    }

    // Label maps named so their ordinal order is their index, several of them bad. The lowest bad one is also large, so it
    // is slow to read: whichever thread reaches a later bad one fails first in time, and only the lowest is the error a
    // loop in order would raise.
    private const int LabelMaps = 64;
    private static readonly int[] BadLabelMaps = [30, 33, 50, 58];
    private const int LargeSide = 1600;

    /// <summary>A large label map of values drawn uniformly from [<paramref name="low"/>, <paramref name="high"/>): noise, so decoding it takes a while.</summary>
    private static string WriteLargeLabelMap(DataTestFiles files, string relative, int width, int low, int high, Action<Mat>? edit = null)
    {
        using var mat = new Mat(LargeSide, width, MatType.CV_8UC1);
        Cv2.Randu(mat, new Scalar(low), new Scalar(high));
        edit?.Invoke(mat);
        return files.Write(relative, mat);
    }

    [Test]
    public void EvalSegNamesTheLowestPredictionOfTheWrongSizeOnEveryRun()
    {
        using var files = new DataTestFiles();
        int lowest = BadLabelMaps.Min();
        for (int i = 0; i < LabelMaps; i++)
        {
            if (i == lowest)
            {
                WriteLargeLabelMap(files, Path.Combine("gt", $"map_{i:D3}.png"), LargeSide, 0, 3);
                WriteLargeLabelMap(files, Path.Combine("pred", $"map_{i:D3}.png"), LargeSide - 1, 0, 3);
                continue;
            }
            files.WriteGray(Path.Combine("gt", $"map_{i:D3}.png"), 6, 8, (y, x) => (byte)((x + y) % 3));
            int width = BadLabelMaps.Contains(i) ? 7 : 8;
            files.WriteGray(Path.Combine("pred", $"map_{i:D3}.png"), 6, width, (y, x) => (byte)(x % 3));
        }
        string expected = files.PathOf("pred", $"map_{lowest:D3}.png");
        for (int run = 0; run < 10; run++)
        {
            var e = Assert.Throws<VimException>(() => SegmentationLabelMaps.Evaluate(files.PathOf("pred"), files.PathOf("gt"), numClasses: 3));
            Assert.That(e!.Message, Does.StartWith($"{expected}: size {LargeSide - 1}x{LargeSide} differs from ground truth"), $"run {run}");
        }
        // Without the bad ones the counts are every map's: the per-thread metrics are all merged.
        foreach (int i in BadLabelMaps)
        {
            files.WriteGray(Path.Combine("gt", $"map_{i:D3}.png"), 6, 8, (y, x) => (byte)((x + y) % 3));
            files.WriteGray(Path.Combine("pred", $"map_{i:D3}.png"), 6, 8, (y, x) => (byte)(x % 3));
        }
        var (metric, images) = SegmentationLabelMaps.Evaluate(files.PathOf("pred"), files.PathOf("gt"), numClasses: 3);
        Assert.That(images, Is.EqualTo(LabelMaps));
        // Per map pred = x % 3, label = (x + y) % 3: they agree where y % 3 == 0, rows 0 and 3 of 6: 16 of 48 pixels.
        long agreed = Enumerable.Range(0, 3).Sum(c => metric.Confusion(c, c));
        long counted = Enumerable.Range(0, 9).Sum(cell => metric.Confusion(cell / 3, cell % 3));
        Assert.That((agreed, counted), Is.EqualTo((16L * LabelMaps, 48L * LabelMaps)));
    }

    [TestCase(2)]
    [TestCase(4)]
    [TestCase(8)]
    public void DataStatsNamesTheLowestLabelMapWithAnOutOfRangeValueOnEveryRun(int threads)
    {
        using var files = new DataTestFiles();
        int lowest = BadLabelMaps.Min();
        for (int i = 0; i < LabelMaps; i++)
        {
            files.WriteRgb(Path.Combine("ade", "images", "training", $"map_{i:D3}.jpg"), 6, 8, (_, _) => (90, 100, 110));
            // ADE's reduce_zero_label: raw 1 and 2 are the two classes, raw 3 is outside them.
            string labelMap = Path.Combine("ade", "annotations", "training", $"map_{i:D3}.png");
            if (i == lowest)
                WriteLargeLabelMap(files, labelMap, LargeSide, 1, 3, mat => mat.Set(4, 5, (byte)3));
            else
            {
                byte outside = BadLabelMaps.Contains(i) ? (byte)3 : (byte)2;
                files.WriteGray(labelMap, 6, 8, (y, x) => y == 4 && x == 5 ? outside : (byte)1);
            }
        }
        var dataset = SegmentationFolderDataset.Ade20k(files.PathOf("ade"), "training", ["sky", "tree"]);
        string expected = files.PathOf("ade", "annotations", "training", $"map_{lowest:D3}.png");
        for (int run = 0; run < 10; run++)
        {
            var e = Assert.Throws<VimException>(() => SegmentationDatasetStatistics.Compute(dataset, threads: threads));
            Assert.That(e!.Message, Does.Contain(expected).And.Contain("label value 3 at (x=5, y=4)"), $"run {run}");
            foreach (int later in BadLabelMaps.Where(b => b != lowest))
                Assert.That(e.Message, Does.Not.Contain($"map_{later:D3}.png"), $"run {run}");
        }
    }
}
