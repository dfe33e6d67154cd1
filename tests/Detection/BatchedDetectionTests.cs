using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Data.Datasets;
using Vim.Detection;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// <see cref="Detector"/>'s batched prediction: a list predicted in batches gives each image, in the list's order, the
/// detections it gets alone (up to float rounding), with fewer forwards; bad batch sizes are refused by name; memory
/// stays flat; a minimum score leaves out exactly the lower detections.
/// </summary>
[NonParallelizable] // counts the detector's forwards through the process-wide StageProfiler
public class BatchedDetectionTests
{
    /// <summary>
    /// How far a batched result may lie from the one-by-one result. A batch changes the shapes of the backbone's matrix
    /// products, so libtorch may sum in another order and the last bits of float32 differ (measured here: boxes 8e-6 px,
    /// scores 3e-8, at most one pixel of a mask); these bounds are a hundred times that, and far below any real change (a
    /// mixed-up image or padding moves boxes by pixels). Classes and counts must match exactly; a mask pixel whose
    /// probability sits within rounding of the 0.5 threshold may flip, so a few pixels of a mask may differ: 0.5% of its
    /// pixels, at least 2.
    /// </summary>
    private const double BoxTolerancePx = 1e-3, ScoreTolerance = 1e-5, MaskPixelFraction = 5e-3;
    private const int MaskPixelsAlwaysAllowed = 2;

    private string _root = null!;

    [OneTimeSetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-batched-det-").FullName;

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>Mixed sizes, three of them repeated, each image with its own pattern (so any mix-up of results shows).</summary>
    private static readonly (int Width, int Height)[] MixedSizes = [(80, 48), (64, 64), (40, 96), (80, 48), (100, 30), (64, 64), (80, 48)];

    private List<string> WriteImages() =>
        MixedSizes.Select((size, k) => PredictorTestKit.WriteImage(Path.Combine(_root, $"mixed{k}.png"), size.Width, size.Height, 23 * k)).ToList();

    private static Detector TinyDetector(CascadeMaskRcnn model, DetectionTestConfig? test = null) =>
        new(model, InferCommandTests.DemoCategories(), testSize: 64, test);

    /// <summary>
    /// The test detector with its classifiers' weights scaled up: initialised at N(0, 0.01), they give every box nearly
    /// the same scores (about 1/6 each), so detections tie within float rounding and their order, and which ones the
    /// top-k keeps, would be decided by the last bits a batch may change. Spread scores make the order meaningful.
    /// </summary>
    internal static CascadeMaskRcnn SpreadScoreDetector()
    {
        var model = InferCommandTests.TinyDetector();
        using var noGrad = no_grad();
        foreach (var (name, weight) in model.named_parameters())
            if (name.EndsWith("cls_score.weight", StringComparison.Ordinal)) weight.mul_(300);
        return model;
    }

    internal static void AssertClose(ImageDetections expected, ImageDetections actual, string what)
    {
        Assert.That((actual.Height, actual.Width), Is.EqualTo((expected.Height, expected.Width)), what);
        Assert.That(actual.Detections.Select(d => d.ClassIndex), Is.EqualTo(expected.Detections.Select(d => d.ClassIndex)), $"{what}: classes");
        for (int i = 0; i < expected.Detections.Count; i++)
        {
            var (e, a) = (expected.Detections[i], actual.Detections[i]);

            Assert.That(new[] { a.X1, a.Y1, a.X2, a.Y2 }, Is.EqualTo(new[] { e.X1, e.Y1, e.X2, e.Y2 }).Within(BoxTolerancePx), $"{what}: box {i}");
            Assert.That(a.Score, Is.EqualTo(e.Score).Within(ScoreTolerance), $"{what}: score {i}");
            Assert.That((a.CategoryId, a.CategoryName), Is.EqualTo((e.CategoryId, e.CategoryName)), $"{what}: category {i}");
            var (expectedMask, actualMask) = (e.MaskBitmap()!, a.MaskBitmap()!);
            int differing = expectedMask.Zip(actualMask).Count(p => p.First != p.Second);
            Assert.That(differing, Is.LessThanOrEqualTo(Math.Max(MaskPixelsAlwaysAllowed, MaskPixelFraction * expectedMask.Count(p => p != 0))), $"{what}: mask {i}");
        }
    }

    private static (IReadOnlyList<ImageDetections> Results, long Forwards) CountingForwards(Func<IReadOnlyList<ImageDetections>> predict) =>
        PredictorTestKit.CountingStage(DetectionStages.Backbone, predict);

    /// <summary>
    /// Seven images of five sizes, in batches of three: every image fits the detector's 64² square, so each batch of three
    /// consecutive images runs as one forward (3 instead of 7; with flip and two scales, 4 passes each), and each image's
    /// detections are those it gets alone, in the list's order.
    /// </summary>
    [Test]
    public void BatchedEqualsOneByOneForMixedSizesInInputOrder([Values(false, true)] bool augmented)
    {
        using var model = SpreadScoreDetector();
        var test = augmented ? new DetectionTestConfig { Flip = true, Scales = [0.5, 1.0] } : null;
        using var detector = TinyDetector(model, test);
        var images = WriteImages();
        int passes = augmented ? 4 : 1;
        var (singles, singleForwards) = CountingForwards(() => images.Select(image => detector.Predict(image)).ToList());
        Assert.That(singleForwards, Is.EqualTo(7 * passes));
        Assert.That(singles.Select(s => (s.Width, s.Height)), Is.EqualTo(MixedSizes), "each result at its image's size");
        Assert.That(singles.Sum(s => s.Detections.Count), Is.GreaterThan(7), "the untrained heads detect something, so the comparison says something");

        var (batched, forwards) = CountingForwards(() => detector.Predict(images, batchSize: 3));
        Assert.That(forwards, Is.EqualTo(3 * passes), "batches [0, 1, 2], [3, 4, 5], [6]");
        Assert.That(batched, Has.Count.EqualTo(7));
        for (int i = 0; i < 7; i++) AssertClose(singles[i], batched[i], $"image {i}");

        // Any two different images differ beyond the tolerance, so a result put at another image's place would be caught.
        Assert.That(singles[0].Detections.Select(d => d.Score), Is.Not.EqualTo(singles[3].Detections.Select(d => d.Score)), "same size, other pixels");
    }

    [Test]
    public void ABatchLargerThanTheListRunsTheListOnce()
    {
        using var model = SpreadScoreDetector();
        using var detector = TinyDetector(model);
        var pixels = WriteImages().Select(PredictorTestKit.PixelsOf).ToList();
        var singles = pixels.Select(image => detector.Predict(image)).ToList();
        var (batched, forwards) = CountingForwards(() => detector.Predict(pixels, batchSize: 100));
        Assert.That(forwards, Is.EqualTo(1));
        for (int i = 0; i < pixels.Count; i++) AssertClose(singles[i], batched[i], $"image {i}");
        Assert.That(detector.Predict(Array.Empty<RgbImage>(), batchSize: 8), Is.Empty);
    }

    [Test]
    public void BatchSizesBelowOneAreRefusedByName()
    {
        using var model = SpreadScoreDetector();
        using var detector = TinyDetector(model);
        var image = PredictorTestKit.WriteImage(Path.Combine(_root, "one.png"), 32, 32);
        foreach (int size in new[] { 0, -3 })
            Assert.That(Assert.Throws<VimException>(() => detector.Predict([image], batchSize: size))!.Message,
                Is.EqualTo($"batchSize must be at least 1 (images predicted per batch), got {size}"));

        // The command checks its option before it reads the config or the checkpoint (which does not exist here).
        var error = new StringWriter();
        var config = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", Path.Combine(_root, "absent.safetensors"), image, "--batch-size", "0"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--batch-size must be at least 1").And.Not.Contain("absent.safetensors"));
    }

    /// <summary>Batched predictions of four images at a time leave no tensor alive and the native heap where it was.</summary>
    [Test]
    public void MemoryStaysFlatOverManyBatchedPredictions()
    {
        using var model = SpreadScoreDetector();
        using var detector = TinyDetector(model);
        var pixels = WriteImages().Take(4).Select(PredictorTestKit.PixelsOf).ToList();
        int detections = 0;
        // Four images' masks are about 4 x 50 x 48 x 80 bytes (0.8 MB) a batch: 60 batches leaked would be 46 MB.
        PredictorTestKit.AssertMemoryStaysFlat(() => detections += detector.Predict(pixels, batchSize: 4).Sum(found => found.Detections.Count),
            count: 60, heapSlackBytes: 4L << 20);
        Assert.That(detections, Is.GreaterThan(60 * 4), "each batch returned detections (with masks)");
    }

    /// <summary><see cref="DetectionRequest.MinScore"/> returns exactly the detections of the full result scoring at least that, in the same order.</summary>
    [Test]
    public void AMinimumScoreLeavesOutExactlyTheLowerDetections()
    {
        using var model = SpreadScoreDetector();
        using var detector = TinyDetector(model);
        var images = WriteImages().Take(3).ToList();
        var full = detector.Predict(images);
        var scores = full.SelectMany(f => f.Detections.Select(d => d.Score)).Order().ToList();
        double median = scores[scores.Count / 2];
        var kept = detector.Predict(images, new DetectionRequest { MinScore = median });
        Assert.That(kept.Sum(k => k.Detections.Count), Is.InRange(1, scores.Count - 1), "the median keeps some and drops some");
        for (int i = 0; i < images.Count; i++)
        {
            var expected = full[i].Detections.Where(d => d.Score >= median).ToList();
            Assert.That(kept[i].Detections.Select(d => d with { Mask = null }).ToList(), Is.EqualTo(expected.Select(d => d with { Mask = null }).ToList()), $"image {i}");
            Assert.That(kept[i].Detections.Select(d => d.Mask!.Counts).ToList(), Is.EqualTo(expected.Select(d => d.Mask!.Counts).ToList()), $"image {i} masks");
        }
        Assert.That(detector.Predict(images[0], new DetectionRequest { MinScore = 1.0 }).Detections, Is.Empty, "softmax scores of an untrained head stay below 1");

        foreach (double bad in new[] { -0.1, 1.5, double.NaN })
            Assert.That(Assert.Throws<VimException>(() => detector.Predict(images[0], new DetectionRequest { MinScore = bad }))!.Message,
                Does.StartWith("DetectionRequest.MinScore must be within [0, 1]"));
    }

    /// <summary>`vim infer`'s detection run with --batch-size writes, per image, what the one-by-one run writes.</summary>
    [Test]
    public void InferWithABatchSizeWritesEveryImagesDrawingAndDetections()
    {
        using var model = SpreadScoreDetector();
        using var detector = TinyDetector(model);
        var images = WriteImages();
        var single = InferCommand.RunDetection(detector, images, Path.Combine(_root, "single"), scoreThreshold: 0.0);
        var batched = InferCommand.RunDetection(detector, images, Path.Combine(_root, "batched"), scoreThreshold: 0.0, batchSize: 3);
        Assert.That(batched, Is.EqualTo(single), "the same images, in order, with the same detection counts");
        foreach (var image in images)
        {
            var name = Path.GetFileNameWithoutExtension(image);
            Assert.That(File.Exists(Path.Combine(_root, "batched", name + ".png")) && File.Exists(Path.Combine(_root, "batched", name + ".json")), name);
        }
    }
}
