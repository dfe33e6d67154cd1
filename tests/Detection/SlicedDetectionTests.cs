using System.Text.Json;
using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;
using Vim.Data.Masks;
using Vim.Detection;
using Vim.Tools.Commands;

namespace Vim.Tests.Detection;

/// <summary>
/// Sliced detection of large images (<see cref="DetectionSlicing"/>, mmdet's large_image_demo.py): where the patches lie
/// (hand-computed as SAHI steps), how patch detections and masks are shifted back and merged, and a real detector predicting
/// in patches, batched or not.
/// </summary>
[NonParallelizable] // counts the detector's forwards through the process-wide StageProfiler
public class SlicedDetectionTests
{
    private string _root = null!;

    [OneTimeSetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-sliced-det-").FullName;

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private static DetectionSlicing Slicing(int patchSize, double overlap = 0.25) => new() { PatchSize = patchSize, OverlapRatio = overlap };

    private static IEnumerable<(int Left, int Top)> Corners(IEnumerable<ImagePatch> patches) => patches.Select(p => (p.Left, p.Top));

    /// <summary>
    /// Patch 640, overlap ⌊0.25 · 640⌋ = 160, so steps of 480: along 1000 pixels 0, then 480 would end at 1120 and moves back
    /// to 360; along 1280, 0, 480, then 960 moves back to 640; 640 pixels are one patch, 641 two (the second at 1).
    /// </summary>
    [TestCase(1000, new[] { 0, 360 })]
    [TestCase(1280, new[] { 0, 480, 640 })]
    [TestCase(640, new[] { 0 })]
    [TestCase(641, new[] { 0, 1 })]
    [TestCase(1120, new[] { 0, 480 })]
    public void PatchesStepByPatchSizeLessOverlapAndTheLastEndsAtTheEdge(int side, int[] starts)
    {
        var patches = SlicedDetection.Patches(side, side, Slicing(640));
        Assert.That(Corners(patches), Is.EqualTo(starts.SelectMany(top => starts.Select(left => (left, top)))), "row by row");
        Assert.That(patches.Select(p => (p.Width, p.Height)).Distinct(), Is.EqualTo(new[] { (640, 640) }), "every patch full size");
    }

    /// <summary>
    /// 1500 × 700 in 512² patches at overlap 0.2: ⌊102.4⌋ = 102, steps of 410. Across: 0, 410, 820, then 1230 moves back to
    /// 988; down: 0, then 410 would end at 922 and moves back to 188. No overlap: 1280 in 640s is exactly 0 and 640.
    /// </summary>
    [Test]
    public void PatchesOfARectangularImageAndWithoutOverlap()
    {
        var patches = SlicedDetection.Patches(700, 1500, Slicing(512, 0.2));
        int[] across = [0, 410, 820, 988], down = [0, 188];
        Assert.That(Corners(patches), Is.EqualTo(down.SelectMany(top => across.Select(left => (left, top)))));
        Assert.That(Corners(SlicedDetection.Patches(640, 1280, Slicing(640, 0))), Is.EqualTo(new[] { (0, 0), (640, 0) }));
    }

    /// <summary>An image smaller than a patch is one patch, itself; a side shorter than the patch is one patch long on that axis, so patches still share a size.</summary>
    [Test]
    public void AnImageSmallerThanAPatchIsOnePatchOfItsOwnSize()
    {
        Assert.That(SlicedDetection.Patches(300, 500, Slicing(640)), Is.EqualTo(new[] { new ImagePatch(0, 0, 500, 300) }));
        var narrow = SlicedDetection.Patches(1000, 500, Slicing(640));
        Assert.That(narrow, Is.EqualTo(new[] { new ImagePatch(0, 0, 500, 640), new ImagePatch(0, 360, 500, 640) }));
    }

    [Test]
    public void BadSettingsAreRefusedByNameAndOption()
    {
        Assert.That(() => SlicedDetection.Patches(10, 10, Slicing(0)),
            Throws.TypeOf<VimException>().With.Message.Contains("PatchSize").And.Message.Contains("--slice-size"));
        Assert.That(() => Slicing(64, 1.0).Check(), Throws.TypeOf<VimException>().With.Message.Contains("OverlapRatio").And.Message.Contains("[0, 1)"));
        Assert.That(() => (new DetectionSlicing { MergeIou = 1.5 }).Check(), Throws.TypeOf<VimException>().With.Message.Contains("--merge-iou"));
        Assert.That(() => new DetectionRequest { Slicing = new DetectionSlicing { MaxPerImage = 0 } }.Check(),
            Throws.TypeOf<VimException>().With.Message.Contains("MaxPerImage"));
    }

    /// <summary>The pixels of a patch, copied here row by row from the image's own pixels, as an independent crop.</summary>
    [Test]
    public void CropCopiesThePatchsPixels()
    {
        int width = 7, height = 5;
        var rgb = Enumerable.Range(0, 3 * width * height).Select(i => (byte)i).ToArray();
        var patch = new ImagePatch(2, 1, 4, 3);
        var expected = new List<byte>();
        for (int y = 1; y < 4; y++)
            for (int x = 2; x < 6; x++)
                for (int c = 0; c < 3; c++) expected.Add((byte)(3 * (y * width + x) + c));
        Assert.That(SlicedDetection.Crop(rgb, height, width, patch), Is.EqualTo(expected));
        Assert.That(() => SlicedDetection.Crop(rgb, height, width, new ImagePatch(4, 0, 4, 3)), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    private static DetectedObject Found(float x1, float y1, float x2, float y2, float score, int classIndex = 0, Rle? mask = null) =>
        new(x1, y1, x2, y2, score, classIndex, 10 + classIndex, $"class {classIndex}", mask);

    /// <summary>A box of a patch at (360, 200) is the same box 360 right and 200 down in the image; its score and category stay.</summary>
    [Test]
    public void APatchsDetectionIsShiftedByThePatchsCorner()
    {
        var patch = new ImagePatch(360, 200, 640, 640);
        var merged = SlicedDetection.Merge([(patch, new ImageDetections(640, 640, [Found(10, 20, 110, 70.5f, 0.8f, 2)]))], 1000, 1000, Slicing(640));
        Assert.That(merged.Detections, Is.EqualTo(new[] { Found(370, 220, 470, 270.5f, 0.8f, 2) }));
        Assert.That((merged.Height, merged.Width), Is.EqualTo((1000, 1000)));
    }

    /// <summary>
    /// Two patches of a 1280 × 640 image overlapping in x 480..640 both see an object there: the left patch at (500, 100,
    /// 600, 200) scoring 0.6, the right one (at 480) at (22, 100, 121, 200), i.e. (502, 100, 601, 200), scoring 0.9: IoU 0.97,
    /// so NMS at 0.25 keeps the 0.9 box. The right patch's other class at the same place and a box of the same class with
    /// IoU 0.15 stay; one with IoU 0.30 goes. Ordered by score.
    /// </summary>
    [Test]
    public void DuplicatesInTheOverlapMergeToTheHigherScoringBoxWithinEachClass()
    {
        var left = new ImagePatch(0, 0, 640, 640);
        var right = new ImagePatch(480, 0, 640, 640);
        // IoU of (560, 100, 640, 200) with (502, 100, 601, 200): 41·100 / (8000 + 9900 − 4100) = 0.297 > 0.25, so dropped;
        // (580, 100, 640, 200): 21·100 / (6000 + 9900 − 2100) = 0.152, kept.
        var merged = SlicedDetection.Merge(
        [
            (left, new ImageDetections(640, 640, [Found(500, 100, 600, 200, 0.6f), Found(560, 100, 640, 200, 0.5f), Found(580, 100, 640, 200, 0.4f)])),
            (right, new ImageDetections(640, 640, [Found(22, 100, 121, 200, 0.9f), Found(22, 100, 121, 200, 0.7f, classIndex: 1)])),
        ], 640, 1280, new DetectionSlicing { PatchSize = 640, MergeIou = 0.25 });
        Assert.That(merged.Detections, Is.EqualTo(new[]
        {
            Found(502, 100, 601, 200, 0.9f), Found(502, 100, 601, 200, 0.7f, classIndex: 1), Found(580, 100, 640, 200, 0.4f),
        }));
    }

    /// <summary>
    /// Soft-NMS (mmcv's linear decay) instead: the box of IoU 1/3 with the 0.9 box ((0, 0, 100, 100) and (50, 0, 150, 100):
    /// 5000 / 15000) above the 0.25 threshold keeps its place at 0.8 · (1 − 1/3); a request's minimum score then drops it at 0.6.
    /// </summary>
    [Test]
    public void SoftNmsDecaysTheOverlappingScoreAndTheMinimumScoreAppliesAfterwards()
    {
        var slicing = new DetectionSlicing { PatchSize = 200, MergeIou = 0.25, MergeNmsType = DetectionNmsType.SoftNms };
        var parts = new List<(ImagePatch, ImageDetections)>
        {
            (new ImagePatch(0, 0, 200, 200), new ImageDetections(200, 200, [Found(0, 0, 100, 100, 0.9f)])),
            (new ImagePatch(50, 0, 200, 200), new ImageDetections(200, 200, [Found(0, 0, 100, 100, 0.8f)])),
        };
        var merged = SlicedDetection.Merge(parts, 200, 250, slicing);
        Assert.That(merged.Detections.Select(d => (d.X1, d.X2)), Is.EqualTo(new[] { (0f, 100f), (50f, 150f) }));
        Assert.That(merged.Detections.Select(d => (double)d.Score), Is.EqualTo(new[] { 0.9, 0.8 * 2 / 3 }).Within(1e-6));
        Assert.That(SlicedDetection.Merge(parts, 200, 250, slicing, minScore: 0.6).Detections.Select(d => d.Score), Is.EqualTo(new[] { 0.9f }));
    }

    /// <summary>A patch's mask lands at the patch's corner in the image: pixels (1, 0) and (3, 2) of a 4 × 3 patch at (3, 2) are (4, 2) and (6, 4) of a 9 × 6 image.</summary>
    [Test]
    public void MasksAreShiftedIntoTheImage()
    {
        var patchMask = new byte[3 * 4];
        patchMask[0 * 4 + 1] = patchMask[2 * 4 + 3] = 1;
        var mask = Rle.Encode(patchMask, 3, 4);
        var merged = SlicedDetection.Merge([(new ImagePatch(3, 2, 4, 3), new ImageDetections(3, 4, [Found(1, 0, 4, 3, 0.5f, mask: mask)]))], 6, 9, Slicing(4));
        var bitmap = merged.Detections.Single().MaskBitmap()!;
        var set = Enumerable.Range(0, bitmap.Length).Where(i => bitmap[i] != 0).Select(i => (X: i % 9, Y: i / 9));
        Assert.That(set, Is.EqualTo(new[] { (4, 2), (6, 4) }));
        Assert.That((merged.Detections[0].Mask!.Height, merged.Detections[0].Mask!.Width), Is.EqualTo((6, 9)));
    }

    /// <summary>
    /// <see cref="Rle.PlaceIn"/> against the mask's bitmap copied into an empty canvas pixel by pixel, for random masks
    /// (empty, full, sparse, dense) at corners, edges and inside.
    /// </summary>
    [Test]
    public void PlacingAMaskEqualsCopyingItsBitmapIntoTheCanvas()
    {
        var random = new Random(5);
        foreach (var (h, w, height, width, left, top) in new[]
        {
            (3, 4, 6, 9, 3, 2), (5, 5, 5, 5, 0, 0), (4, 2, 10, 3, 1, 6), (1, 1, 2, 2, 1, 1), (7, 3, 7, 8, 5, 0), (2, 6, 9, 6, 0, 3),
        })
            foreach (double density in new[] { 0, 0.1, 0.5, 0.9, 1 })
            {
                var bitmap = Enumerable.Range(0, h * w).Select(_ => (byte)(random.NextDouble() < density ? 1 : 0)).ToArray();
                var canvas = new byte[height * width];
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++) canvas[(top + y) * width + left + x] = bitmap[y * w + x];
                var placed = Rle.Encode(bitmap, h, w).PlaceIn(height, width, left, top);
                Assert.That(placed.Decode(), Is.EqualTo(canvas), $"{w}x{h} at ({left}, {top}) of {width}x{height}, density {density}");
                Assert.That(placed.Counts, Is.EqualTo(Rle.Encode(canvas, height, width).Counts), "the canonical runs (no empty run inside)");
            }
        Assert.That(() => Rle.Encode(new byte[4], 2, 2).PlaceIn(3, 3, 2, 0), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    private static (ImageDetections Result, long Forwards) CountingForwards(Func<ImageDetections> predict) =>
        PredictorTestKit.CountingStage(DetectionStages.Backbone, predict);

    /// <summary>
    /// An image no larger than a patch is one patch, the image itself: with a merge IoU of 1 (nothing suppressed that the
    /// detector kept) the sliced prediction is the plain one; at the default 0.25 it is the plain one thinned by NMS.
    /// </summary>
    [Test]
    public void AnImageWithinOnePatchGivesThePlainPrediction()
    {
        using var model = BatchedDetectionTests.SpreadScoreDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var image = PredictorTestKit.WriteImage(Path.Combine(_root, "small.png"), 80, 48, 11);
        var plain = detector.Predict(image);
        Assert.That(plain.Detections, Is.Not.Empty, "the untrained heads detect something, so the comparison says something");
        var sliced = detector.Predict(image, new DetectionRequest { Slicing = new DetectionSlicing { PatchSize = 96, MergeIou = 1 } });
        BatchedDetectionTests.AssertClose(plain, sliced, "one patch");
        var thinned = detector.Predict(image, new DetectionRequest { Slicing = new DetectionSlicing { PatchSize = 96 } });
        Assert.That(thinned.Detections, Is.SubsetOf(plain.Detections).Using<DetectedObject>((a, b) => a with { Mask = null } == b with { Mask = null }));
    }

    /// <summary>
    /// With the whole image asked for as well, an image within one patch (that patch is the whole image) is still predicted
    /// once, not twice: one forward, and at a merge IoU of 1 (which keeps identical boxes) no duplicated detection.
    /// </summary>
    [Test]
    public void AnImageWithinOnePatchIsNotPredictedTwiceForTheWholeImage()
    {
        using var model = BatchedDetectionTests.SpreadScoreDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var image = PredictorTestKit.WriteImage(Path.Combine(_root, "small-whole.png"), 80, 48, 11);
        var plain = detector.Predict(image);
        var slicing = new DetectionSlicing { PatchSize = 96, MergeIou = 1, IncludeFullImage = true };
        var (sliced, forwards) = CountingForwards(() => detector.Predict(image, new DetectionRequest { Slicing = slicing }));
        Assert.That(forwards, Is.EqualTo(1));
        BatchedDetectionTests.AssertClose(plain, sliced, "one patch, the whole image");
    }

    /// <summary>
    /// A 200 × 150 image in 96² patches at overlap 0.25 (steps of 72): across 0, 72, 104; down 0, 54; six patches. The sliced
    /// prediction equals each patch (cut here from the image's pixels) predicted alone and merged; batched four patches a
    /// time it takes two forwards instead of six and gives the same detections; every box and mask lies in the image. With
    /// the whole image as well, a seventh input joins the merge.
    /// </summary>
    [Test]
    public void ASlicedPredictionIsItsPatchesPredictedAloneAndMergedBatchedOrNot()
    {
        using var model = BatchedDetectionTests.SpreadScoreDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var image = PredictorTestKit.WriteImage(Path.Combine(_root, "large.png"), 200, 150, 5);
        var pixels = PredictorTestKit.PixelsOf(image);
        var slicing = Slicing(96);
        var patches = new[] { 0, 54 }.SelectMany(top => new[] { 0, 72, 104 }.Select(left => new ImagePatch(left, top, 96, 96))).ToList();
        var alone = patches.Select(patch =>
        {
            var crop = new byte[96 * 96 * 3];
            for (int y = 0; y < 96; y++)
                for (int x = 0; x < 96 * 3; x++) crop[y * 96 * 3 + x] = pixels.Pixels[((patch.Top + y) * 200 + patch.Left) * 3 + x];
            return (patch, detector.Predict(new RgbImage(96, 96, crop)));
        }).ToList();
        var expected = SlicedDetection.Merge(alone, 150, 200, slicing);
        Assert.That(expected.Detections, Is.Not.Empty);

        var (sliced, forwards) = CountingForwards(() => detector.Predict(image, new DetectionRequest { Slicing = slicing }));
        Assert.That(forwards, Is.EqualTo(6));
        BatchedDetectionTests.AssertClose(expected, sliced, "sliced");
        var (batched, batchedForwards) = CountingForwards(() => detector.Predict([image], new DetectionRequest { Slicing = slicing }, batchSize: 4).Single());
        Assert.That(batchedForwards, Is.EqualTo(2));
        BatchedDetectionTests.AssertClose(expected, batched, "four patches a batch");
        foreach (var d in sliced.Detections)
        {
            Assert.That(d.X1 >= 0 && d.Y1 >= 0 && d.X2 <= 200 && d.Y2 <= 150 && d.X1 <= d.X2 && d.Y1 <= d.Y2, Is.True, $"box {d} in the image");
            Assert.That((d.Mask!.Height, d.Mask.Width), Is.EqualTo((150, 200)));
        }

        var withWhole = slicing with { IncludeFullImage = true };
        var (whole, wholeForwards) = CountingForwards(() => detector.Predict(image, new DetectionRequest { Slicing = withWhole }));
        Assert.That(wholeForwards, Is.EqualTo(7));
        BatchedDetectionTests.AssertClose(SlicedDetection.Merge([.. alone, (new ImagePatch(0, 0, 200, 150), detector.Predict(image))], 150, 200, withWhole),
            whole, "with the whole image");
    }

    /// <summary>
    /// `vim infer --slice-size 96 --slice-debug` on the 200 × 150 image: the patches' corners (0, 0), (72, 0), (104, 54)
    /// and (104, 149), the first pixel of each dashed side, are white, a pixel inside a patch is the image's; the json lists
    /// the sliced prediction's detections, the first with its box.
    /// </summary>
    [Test]
    public void InferDrawsThePatchGridAndListsTheMergedDetections()
    {
        using var model = BatchedDetectionTests.SpreadScoreDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var image = PredictorTestKit.WriteImage(Path.Combine(_root, "grid.png"), 200, 150, 5);
        var request = new DetectionRequest { Slicing = InferCommand.Slicing(96, null, null, null, wholeImage: false, debug: true) };
        var expected = detector.Predict(image, request);

        var outDir = Path.Combine(_root, "grid-out");
        var (_, drawn, total) = InferCommand.RunDetection(detector, [image], outDir, scoreThreshold: 1.0, batchSize: 3, request, drawPatches: true).Single();
        Assert.That((drawn, total), Is.EqualTo((0, expected.Detections.Count)));
        using var png = Cv2.ImRead(Path.Combine(outDir, "grid.png"), ImreadModes.Color);
        using var source = Cv2.ImRead(image, ImreadModes.Color);
        foreach (var (x, y) in new[] { (0, 0), (72, 0), (104, 54), (104, 149) })
            Assert.That(png.At<Vec3b>(y, x), Is.EqualTo(new Vec3b(255, 255, 255)), $"patch outline at ({x}, {y})");
        Assert.That(png.At<Vec3b>(30, 50), Is.EqualTo(source.At<Vec3b>(30, 50)), "inside a patch");

        InferCommand.RunDetection(detector, [image], outDir, scoreThreshold: 0, batchSize: 1, request);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "grid.json")));
        var listed = json.RootElement.GetProperty("detections").EnumerateArray().ToList();
        Assert.That(listed, Has.Count.EqualTo(expected.Detections.Count));
        var first = expected.Detections[0];
        Assert.That(listed[0].GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()),
            Is.EqualTo(new[] { first.X1, first.Y1, first.X2 - first.X1, first.Y2 - first.Y1 }).Within(0.01));
    }

    /// <summary>The --slice-* options: unset ones keep the defaults, the others need --slice-size, --merge-nms takes the config spellings.</summary>
    [Test]
    public void InferSliceOptionsBuildTheSettingsAndRefuseBadUse()
    {
        Assert.That(InferCommand.Slicing(null, null, null, null, false, false), Is.Null);
        Assert.That(InferCommand.Slicing(512, null, null, null, false, false), Is.EqualTo(new DetectionSlicing { PatchSize = 512 }));
        Assert.That(InferCommand.Slicing(512, 0.5, 0.4, "soft_nms", true, false), Is.EqualTo(new DetectionSlicing
        {
            PatchSize = 512, OverlapRatio = 0.5, MergeIou = 0.4, MergeNmsType = DetectionNmsType.SoftNms, IncludeFullImage = true,
        }));
        Assert.That(() => InferCommand.Slicing(null, 0.3, null, null, false, false),
            Throws.TypeOf<VimException>().With.Message.Contains("--slice-overlap").And.Message.Contains("--slice-size"));
        Assert.That(() => InferCommand.Slicing(null, null, null, null, false, true), Throws.TypeOf<VimException>().With.Message.Contains("--slice-debug"));
        Assert.That(() => InferCommand.Slicing(512, null, null, "greedy", false, false),
            Throws.TypeOf<VimException>().With.Message.Contains("nms or soft_nms").And.Message.Contains("greedy"));
        Assert.That(() => InferCommand.Slicing(512, 1.2, null, null, false, false), Throws.TypeOf<VimException>().With.Message.Contains("--slice-overlap"));
    }
}
