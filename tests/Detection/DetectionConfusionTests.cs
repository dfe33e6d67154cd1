using System.Text.Json;
using NUnit.Framework;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Detection;

namespace Vim.Tests.Detection;

/// <summary>
/// mmdet's box confusion matrix (analyze_per_img_dets) on hand-placed boxes. Classes cat, dog, bird (COCO ids 1, 2, 3)
/// are rows/columns 0–2 and background is 3; every image is 100×100 and every box 20×20 unless stated.
/// </summary>
public class DetectionConfusionTests
{
    private const int Cat = 0, Dog = 1, Bird = 2, Background = 3;

    internal const string GroundTruthJson = """
    {
      "images": [
        {"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}, {"id": 3, "width": 100, "height": 100},
        {"id": 4, "width": 100, "height": 100}, {"id": 5, "width": 100, "height": 100}, {"id": 6, "width": 100, "height": 100}
      ],
      "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [50, 50, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 3, "image_id": 3, "category_id": 3, "bbox": [0, 0, 30, 30], "area": 900, "iscrowd": 0},
        {"id": 4, "image_id": 4, "category_id": 2, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 1},
        {"id": 5, "image_id": 4, "category_id": 3, "bbox": [90, 60, 0.5, 20], "area": 10, "iscrowd": 0},
        {"id": 6, "image_id": 4, "category_id": 3, "bbox": [150, 150, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 7, "image_id": 4, "category_id": 1, "bbox": [60, 10, 20, 20], "area": 0, "iscrowd": 0},
        {"id": 8, "image_id": 5, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 9, "image_id": 6, "category_id": 3, "bbox": [40, 40, 20, 20], "area": 400, "iscrowd": 0}
      ],
      "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}]
    }
    """;

    // Image 1: a true positive (0.9), a duplicate of it (IoU 380/420 = 0.905, 0.8) and a cat below the threshold (0.2).
    // Image 2: a cat on the dog (class confusion). Image 3: the bird has no detection (missed) and a dog lies on nothing
    // (background). Image 4: a dog on the crowd dog; the ground truths 5 (0.5 wide), 6 (outside the image) and 7 (area 0)
    // are no ground truth for mmdet's CocoDataset, and no detection is near them. Image 5: nothing detected at all. Image
    // 6: a bird scoring exactly the threshold, 0.3, on the bird.
    internal const string ResultsJson = """
    [
      {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
      {"image_id": 1, "category_id": 1, "bbox": [11, 10, 20, 20], "score": 0.8},
      {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.2},
      {"image_id": 2, "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.7},
      {"image_id": 3, "category_id": 2, "bbox": [60, 60, 20, 20], "score": 0.5},
      {"image_id": 4, "category_id": 2, "bbox": [0, 0, 40, 40], "score": 0.95},
      {"image_id": 6, "category_id": 3, "bbox": [40, 40, 20, 20], "score": 0.3}
    ]
    """;

    private static ConfusionMatrix Compute(DetectionConfusionSettings settings)
    {
        using var gt = JsonDocument.Parse(GroundTruthJson);
        using var results = JsonDocument.Parse(ResultsJson);
        return DetectionConfusion.Compute(CocoDataset.Parse(gt.RootElement, "gt.json"), CocoResults.Parse(results.RootElement, "results.json"),
            settings, "gt.json", "results.json");
    }

    private static long[,] Expected(params (int Truth, int Predicted, long Count)[] cells)
    {
        var expected = new long[4, 4];
        foreach (var (t, p, n) in cells) expected[t, p] += n;
        return expected;
    }

    private static void AssertCells(ConfusionMatrix matrix, long[,] expected)
    {
        Assert.That(matrix.Labels, Is.EqualTo(new[] { "cat", "dog", "bird", "background" }));
        for (int t = 0; t < 4; t++)
            for (int p = 0; p < 4; p++)
                Assert.That(matrix[t, p], Is.EqualTo(expected[t, p]), $"[{matrix.Labels[t]}, {matrix.Labels[p]}]");
    }

    [Test]
    public void MmdetDefaultsCountEveryPairMissesAndBackgroundDetections()
    {
        AssertCells(Compute(new DetectionConfusionSettings()), Expected(
            (Cat, Cat, 2),              // image 1: the true positive and its duplicate both pair with the cat; 0.2 is below 0.3
            (Dog, Cat, 1),              // image 2: the cat detected on the dog …
            (Dog, Background, 1),       // … leaves the dog missed: no dog detection paired with it
            (Bird, Background, 1),      // image 3: the bird nobody detected
            (Background, Dog, 1),       // image 3: the dog on empty ground
            (Dog, Dog, 1),              // image 4: the crowd dog is ground truth as in mmdet 3, and its detection pairs with it
            (Cat, Background, 1),       // image 5: an image with no detections still counts its cat as missed
            (Bird, Bird, 1)));          // image 6: a score equal to the threshold counts (score >= score_thr)
    }

    /// <summary>
    /// With --nms-iou-thr, mmcv's nms keeps scores strictly above the threshold, then suppresses within the class: the
    /// duplicate (IoU 0.905 > 0.5) goes, and so does the bird at exactly 0.3, which leaves that bird missed.
    /// </summary>
    [Test]
    public void NmsRemovesTheDuplicateAndDropsScoresEqualToTheThreshold()
    {
        AssertCells(Compute(new DetectionConfusionSettings { NmsIouThreshold = 0.5 }), Expected(
            (Cat, Cat, 1), (Dog, Cat, 1), (Dog, Background, 1), (Bird, Background, 1), (Background, Dog, 1), (Dog, Dog, 1),
            (Cat, Background, 1), (Bird, Background, 1)));
    }

    /// <summary>
    /// A lower score threshold lets the 0.2 cat in (a third pair on the cat); a TP IoU above the duplicate's 0.905 turns it
    /// into a background detection.
    /// </summary>
    [Test]
    public void ThresholdsMoveDetectionsBetweenCells()
    {
        var lowScore = Compute(new DetectionConfusionSettings { ScoreThreshold = 0.1 });
        Assert.That(lowScore[Cat, Cat], Is.EqualTo(3));
        var strictIou = Compute(new DetectionConfusionSettings { TpIouThreshold = 0.95 });
        Assert.That(strictIou[Cat, Cat], Is.EqualTo(1));
        Assert.That(strictIou[Background, Cat], Is.EqualTo(1), "the shifted duplicate pairs with nothing at IoU ≥ 0.95");
        Assert.That(strictIou[Background, Dog], Is.EqualTo(1));
    }

    /// <summary>A detection overlapping two ground truths pairs with both (each pair counts), and neither is missed.</summary>
    [Test]
    public void ADetectionOverlappingTwoObjectsCountsForBoth()
    {
        using var gt = JsonDocument.Parse("""
        {"images": [{"id": 1, "width": 100, "height": 100}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400},
                         {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 20, 21], "area": 420}],
         "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
        """);
        using var results = JsonDocument.Parse("""[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9}]""");
        var matrix = DetectionConfusion.Compute(CocoDataset.Parse(gt.RootElement, "gt"), CocoResults.Parse(results.RootElement, "res"),
            new DetectionConfusionSettings(), "gt", "res");
        // IoU with the dog 400/420 = 0.95: [dog, cat]; the dog has no dog detection, so it is missed as well.
        Assert.That(matrix[0, 0], Is.EqualTo(1));
        Assert.That(matrix[1, 0], Is.EqualTo(1));
        Assert.That(matrix[1, 2], Is.EqualTo(1));
        Assert.That(matrix[0, 2], Is.Zero);
        Assert.That(matrix[2, 0], Is.Zero);
    }

    [Test]
    public void ResultsOutsideTheGroundTruthAreRefusedNamingTheFileAndEntry()
    {
        using var gt = JsonDocument.Parse(GroundTruthJson);
        var dataset = CocoDataset.Parse(gt.RootElement, "gt.json");
        VimException Refused(string results)
        {
            using var doc = JsonDocument.Parse(results);
            return Assert.Throws<VimException>(() =>
                DetectionConfusion.Compute(dataset, CocoResults.Parse(doc.RootElement, "res.json"), new DetectionConfusionSettings(), "gt.json", "res.json"))!;
        }
        Assert.That(Refused("""[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}, {"image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1], "score": 1}]""").Message,
            Does.Contain("res.json: [1]").And.Contain("category_id 9").And.Contain("gt.json"));
        Assert.That(Refused("""[{"image_id": 77, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]""").Message,
            Does.Contain("res.json: [0]").And.Contain("image_id 77"));
        Assert.That(Refused("""[{"image_id": 1, "category_id": 1, "segmentation": {"size": [100, 100], "counts": [10000]}, "score": 1}]""").Message,
            Does.Contain("res.json: [0]").And.Contain("\"bbox\""));
    }

    [TestCase(-0.1, 0.5, null, "--score-thr")]
    [TestCase(1.5, 0.5, null, "--score-thr")]
    [TestCase(0.3, 0.0, null, "--tp-iou-thr")]
    [TestCase(0.3, double.NaN, null, "--tp-iou-thr")]
    [TestCase(0.3, 0.5, 0.0, "--nms-iou-thr")]
    [TestCase(0.3, 0.5, 1.5, "--nms-iou-thr")]
    public void ThresholdsOutsideTheirRangeNameTheOption(double score, double tpIou, double? nmsIou, string option)
    {
        var settings = new DetectionConfusionSettings { ScoreThreshold = score, TpIouThreshold = tpIou, NmsIouThreshold = nmsIou };
        Assert.That(Assert.Throws<VimException>(settings.Validate)!.Message, Does.StartWith(option));
    }
}
