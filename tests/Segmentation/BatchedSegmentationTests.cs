using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Data.Datasets;
using Vim.Segmentation;
using Vim.Tools.Commands;

namespace Vim.Tests.Segmentation;

/// <summary>
/// <see cref="Segmentor"/>'s batched prediction: images are batched only with images of the same test shape (images of
/// different original sizes may share one), each gets the class map and scores it gets alone, at its own size and in the
/// list's order, whole-image or sliding-window with flip and scales; bad batch sizes are refused; memory stays flat.
/// </summary>
[NonParallelizable] // counts the segmentor's forwards through the process-wide StageProfiler
public class BatchedSegmentationTests
{
    /// <summary>
    /// How far batched scores may lie from one-by-one scores: a batch changes the shapes of the backbone's matrix products,
    /// so the last bits of float32 may differ (measured here: 3e-8). 1e-5 is far above that and far below a real change.
    /// A pixel's class may differ only where its two best one-by-one scores lie within twice that of each other (a tie).
    /// </summary>
    private const float ScoreTolerance = 1e-5f;

    private string _root = null!;

    [OneTimeSetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-batched-seg-").FullName;

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// Sizes whose test resize into data.scale 64 (keep-ratio) gives four shapes: 80×48, 120×72 and 80×48 again all become
    /// 64×38 (two different original sizes), the two squares 64×64, and 40×96 and 33×70 one shape each (27×64, 30×64).
    /// </summary>
    private static readonly (int Width, int Height)[] MixedSizes = [(80, 48), (64, 64), (120, 72), (40, 96), (80, 48), (64, 64), (33, 70)];

    private List<RgbImage> Images() =>
        MixedSizes.Select((size, k) => PredictorTestKit.PixelsOf(PredictorTestKit.WriteImage(Path.Combine(_root, $"mixed{k}.png"), size.Width, size.Height, 31 * k))).ToList();

    private static Segmentor TinySegmentor(EncoderDecoder model, SegmentationTestConfig test) => new(model, [64, 64], test, ["a", "b", "c", "d", "e"]);

    private static readonly SegmentationTestConfig Whole = new() { Mode = "whole" };

    private static readonly SegmentationTestConfig SlideFlipScales = new() { Mode = "slide", CropSize = [32, 32], Stride = [24, 24], Flip = true, Scales = [0.75, 1.0] };

    private static void AssertClose(ImageSegmentation expected, ImageSegmentation actual, string what)
    {
        Assert.That((actual.Height, actual.Width), Is.EqualTo((expected.Height, expected.Width)), what);
        var (e, a) = (expected.Scores!, actual.Scores!);
        Assert.That((a.Kind, a.Classes), Is.EqualTo((e.Kind, e.Classes)), what);
        Assert.That(a.Values, Is.EqualTo(e.Values).Within(ScoreTolerance), $"{what}: scores");
        int plane = expected.Height * expected.Width, classes = e.Classes.Count;
        for (int p = 0; p < plane; p++)
        {
            if (actual.ClassMap[p] == expected.ClassMap[p]) continue;
            var best = Enumerable.Range(0, classes).Select(k => e.Values[k * plane + p]).OrderDescending().Take(2).ToArray();
            Assert.That(best[0] - best[1], Is.LessThanOrEqualTo(2 * ScoreTolerance), $"{what}: pixel {p}'s class differs without a tie");
        }
    }

    private static (IReadOnlyList<ImageSegmentation> Results, long Forwards) CountingForwards(Func<IReadOnlyList<ImageSegmentation>> predict) =>
        PredictorTestKit.CountingStage(SegmentationStages.Backbone, predict);

    /// <summary>
    /// Whole image, batches of three: the 64×38 images 0, 2, 4 fill a batch, the squares 1 and 5 share one, images 3 and 6
    /// run alone: 4 forwards for 7 images. Each image's scores are resized to its own size (images 0 and 2 share a batch
    /// but not a size).
    /// </summary>
    [Test]
    public void WholeImageBatchesHoldOneTestShapeAndEqualOneByOne()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model, Whole);
        var images = Images();
        var (singles, singleForwards) = CountingForwards(() => images.Select(image => segmentor.Predict(image, ScoreRequest.AllClasses)).ToList());
        Assert.That(singleForwards, Is.EqualTo(7));
        Assert.That(singles.Select(s => (s.Width, s.Height)), Is.EqualTo(MixedSizes));
        Assert.That(singles.Select(s => s.Scores!.Kind).Distinct(), Is.EqualTo(new[] { ScoreKind.Logits }));

        var (batched, forwards) = CountingForwards(() => segmentor.Predict(images, ScoreRequest.AllClasses, batchSize: 3));
        Assert.That(forwards, Is.EqualTo(4), "[0, 2, 4], [1, 5], [3], [6]");
        Assert.That(batched, Has.Count.EqualTo(7));
        for (int i = 0; i < 7; i++) AssertClose(singles[i], batched[i], $"image {i}");
        Assert.That(singles[0].Scores!.Values, Is.Not.EqualTo(singles[4].Scores!.Values).Within(ScoreTolerance), "same size, other pixels: a mix-up would show");
    }

    /// <summary>Sliding windows (each window cropped from the whole batch), flip and two scales: probabilities as one by one.</summary>
    [Test]
    public void SlidingWindowFlipAndScalesBatchedEqualOneByOne()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model, SlideFlipScales);
        var images = Images();
        var singles = images.Select(image => segmentor.Predict(image, ScoreRequest.AllClasses)).ToList();
        var batched = segmentor.Predict(images, ScoreRequest.AllClasses, batchSize: 2);
        Assert.That(batched.Select(b => b.Scores!.Kind).Distinct(), Is.EqualTo(new[] { ScoreKind.Probabilities }));
        for (int i = 0; i < 7; i++) AssertClose(singles[i], batched[i], $"image {i}");
    }

    [Test]
    public void ABatchLargerThanTheListRunsEachShapeOnce()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model, Whole);
        var images = Images();
        var singles = images.Select(image => segmentor.Predict(image, ScoreRequest.For(3, 1))).ToList();
        var (batched, forwards) = CountingForwards(() => segmentor.Predict(images, ScoreRequest.For(3, 1), batchSize: 64));
        Assert.That(forwards, Is.EqualTo(4), "one forward per test shape");
        for (int i = 0; i < 7; i++)
        {
            Assert.That(batched[i].Scores!.Classes, Is.EqualTo(new[] { 3, 1 }));
            Assert.That(batched[i].Scores!.Values, Is.EqualTo(singles[i].Scores!.Values).Within(ScoreTolerance), $"image {i}");
        }
    }

    [Test]
    public void BatchSizesBelowOneAndBadRequestsAreRefusedBeforeAnyImageIsRead()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model, Whole);
        var absent = Path.Combine(_root, "absent.png");
        Assert.That(Assert.Throws<VimException>(() => segmentor.Predict([absent], batchSize: 0))!.Message,
            Is.EqualTo("batchSize must be at least 1 (images predicted per batch), got 0"));
        Assert.That(Assert.Throws<VimException>(() => segmentor.Predict([absent], ScoreRequest.For(7), batchSize: 2))!.Message,
            Does.Contain("class index 7 is not a class of this segmentor (0..4)"));
    }

    /// <summary>Batched predictions with every class's scores leave no tensor alive and the native heap where it was.</summary>
    [Test]
    public void MemoryStaysFlatOverManyBatchedPredictions()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model, SlideFlipScales);
        var images = Images().Take(5).ToList();
        // One batch's scores are 5 classes x about 23,000 pixels x 4 bytes (0.5 MB): 80 leaked would be 37 MB.
        PredictorTestKit.AssertMemoryStaysFlat(() => Assert.That(segmentor.Predict(images, ScoreRequest.AllClasses, batchSize: 3), Has.Count.EqualTo(5)),
            count: 80, heapSlackBytes: 4L << 20);
    }

    /// <summary>`vim infer`'s segmentation run with --batch-size writes the class-index PNG of every image.</summary>
    [Test]
    public void InferWithABatchSizeWritesEveryImagesPredictions()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model, Whole);
        var paths = MixedSizes.Select((size, k) => PredictorTestKit.WriteImage(Path.Combine(_root, $"infer{k}.png"), size.Width, size.Height, 31 * k)).ToList();
        var dir = Path.Combine(_root, "infer-out");
        InferCommand.RunSegmentation(segmentor, paths, dir, batchSize: 3);
        foreach (var (path, (width, height)) in paths.Zip(MixedSizes))
        {
            var (labels, h, w) = ImageDecoder.ReadLabelMap(Path.Combine(dir, "pred", Path.GetFileName(path)));
            var expected = segmentor.Predict(path);
            Assert.That((w, h), Is.EqualTo((width, height)));
            Assert.That(labels.Zip(expected.ClassMap).Count(p => p.First != p.Second), Is.LessThanOrEqualTo(labels.Length / 1000), path);
        }
    }
}
