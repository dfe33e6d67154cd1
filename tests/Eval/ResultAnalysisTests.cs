using System.Text.Json;
using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Data;

namespace Vim.Tests.Eval;

/// <summary>
/// `vim eval analyze` (mmdet's analyze_results.py): per-image COCO AP on hand-placed boxes, the ranking and its top-k
/// split, per-image mIoU on a hand-computed label map, the files the command writes, and its refusals.
/// </summary>
public class ResultAnalysisTests
{
    // Every image is 100×100; cat, dog, bird are COCO ids 1, 2, 3. What each image tests, and its AP by hand, is beside
    // its detections in ResultsJson.
    internal const string GroundTruthJson = """
    {
      "images": [
        {"id": 1, "width": 100, "height": 100, "file_name": "img1.png"}, {"id": 2, "width": 100, "height": 100, "file_name": "img2.png"},
        {"id": 3, "width": 100, "height": 100, "file_name": "img3.png"}, {"id": 4, "width": 100, "height": 100, "file_name": "img4.png"},
        {"id": 5, "width": 100, "height": 100, "file_name": "img5.png"}, {"id": 6, "width": 100, "height": 100, "file_name": "img6.png"},
        {"id": 7, "width": 100, "height": 100, "file_name": "img7.png"}, {"id": 8, "width": 100, "height": 100, "file_name": "img8.png"},
        {"id": 9, "width": 100, "height": 100, "file_name": "img9.png"}, {"id": 10, "width": 100, "height": 100, "file_name": "img10.png"},
        {"id": 11, "width": 100, "height": 100, "file_name": "img11.png"}
      ],
      "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 30], "area": 900, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 3, "image_id": 3, "category_id": 2, "bbox": [50, 50, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 4, "image_id": 4, "category_id": 2, "bbox": [50, 50, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 5, "image_id": 5, "category_id": 1, "bbox": [30, 30, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 6, "image_id": 8, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 7, "image_id": 8, "category_id": 2, "bbox": [60, 60, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 8, "image_id": 9, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 9, "image_id": 10, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 10, "image_id": 10, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600, "iscrowd": 1},
        {"id": 11, "image_id": 11, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}
      ],
      "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}]
    }
    """;

    // AP of an image = the mean over IoU thresholds .50:.05:.95 and over the categories with ground truth in it of the
    // precision at the 101 recall points, each the best precision at that recall or beyond. A precision of 1 is 1 − 2⁻⁵² in
    // fact: pycocotools divides by tp + fp + np.spacing(1), which changes 1 + 0 but not 2 + 0 (below half an ulp of 2),
    // so the hand values hold to 1e-12 and the ranking below avoids scores that differ by that alone.
    internal const string ResultsJson = """
    [
      {"image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 30], "score": 0.9},
      {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 6], "score": 0.8},
      {"image_id": 3, "category_id": 2, "bbox": [0, 0, 20, 20], "score": 0.9},
      {"image_id": 3, "category_id": 2, "bbox": [50, 50, 20, 20], "score": 0.8},
      {"image_id": 4, "category_id": 2, "bbox": [50, 50, 20, 20], "score": 0.9},
      {"image_id": 4, "category_id": 2, "bbox": [0, 0, 20, 20], "score": 0.8},
      {"image_id": 6, "category_id": 1, "bbox": [5, 5, 20, 20], "score": 0.7},
      {"image_id": 8, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
      {"image_id": 9, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
      {"image_id": 9, "category_id": 2, "bbox": [60, 60, 20, 20], "score": 0.95},
      {"image_id": 10, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
      {"image_id": 10, "category_id": 1, "bbox": [55, 55, 20, 20], "score": 0.95},
      {"image_id": 11, "category_id": 1, "bbox": [0, 0, 10, 7.2], "score": 0.6}
    ]
    """;

    /// <summary>Each image's AP by hand (NaN: no ground truth, not ranked), in the json's image order.</summary>
    internal static readonly double[] HandAps =
    [
        1.0,        // 1: one perfect detection: matched at every threshold, precision 1 at every recall.
        0.3,        // 2: IoU 60/100 = 0.6 exactly: matched at .50, .55 and .60 (a match needs IoU ≥ the threshold, and the third
                    //    threshold, 0.5 + 2·0.05 as numpy's linspace computes it, is the double 0.6), unmatched above: 3/10.
        0.5,        // 3: a false positive (0.9) above the true positive (0.8): precision 1/2 at recall 1, and interpolated back
                    //    to recall 0: 0.5 at every recall point and threshold.
        1.0,        // 4: the same two detections with the scores swapped: precision 1 up to recall 1; the later false positive costs nothing.
        0.0,        // 5: ground truth and no detection: recall 0 everywhere.
        double.NaN, // 6: a detection and no ground truth: every category −1 in COCOeval, no AP.
        double.NaN, // 7: neither.
        0.5,        // 8: cat found perfectly (1), dog missed (0): the mean over the two categories with ground truth.
        1.0,        // 9: cat perfect; the dog detection's category has no ground truth in the image, so it is left out.
        1.0,        // 10: the higher-scored detection lies on a crowd region (its IoU over its own area, 1): ignored, not a false positive.
        0.5,        // 11: IoU 72/100: matched at .50 up to .70, 5 of 10 thresholds.
    ];

    private static (CocoDataset GroundTruth, List<CocoDetection> Detections) HandCase()
    {
        using var gt = JsonDocument.Parse(GroundTruthJson);
        using var results = JsonDocument.Parse(ResultsJson);
        return (CocoDataset.Parse(gt.RootElement, "gt.json"), CocoResults.Parse(results.RootElement, "results.json"));
    }

    [Test]
    public void PerImageApMatchesTheHandComputedCases()
    {
        var (groundTruth, detections) = HandCase();
        var scores = DetectionResultAnalysis.Score(groundTruth, detections, CocoIouType.Bbox, 0.3, "gt.json", "results.json");
        Assert.That(scores.Select(s => s.Image), Is.EqualTo(Enumerable.Range(1, 11).Select(i => $"img{i}.png")));
        Assert.That(scores.Select(s => s.Index), Is.EqualTo(Enumerable.Range(0, 11)));
        for (int i = 0; i < HandAps.Length; i++)
        {
            if (double.IsNaN(HandAps[i])) Assert.That(scores[i].Score, Is.NaN, scores[i].Image);
            else Assert.That(scores[i].Score, Is.EqualTo(HandAps[i]).Within(1e-12), scores[i].Image);
        }
        // ground truths, crowd regions, detections, detections scoring ≥ 0.3: image 10 has one object, one crowd, two detections.
        Assert.That(DetectionResultAnalysis.DetailNames, Is.EqualTo(new[] { "ground_truths", "crowd_regions", "detections", "detections_drawn" }));
        Assert.That(scores[9].Details, Is.EqualTo(new long[] { 1, 1, 2, 2 }));
        Assert.That(scores[6].Details, Is.EqualTo(new long[] { 0, 0, 0, 0 }));
        var lowThreshold = DetectionResultAnalysis.Score(groundTruth, detections, CocoIouType.Bbox, 0.85, "gt.json", "results.json");
        Assert.That(lowThreshold[2].Details, Is.EqualTo(new long[] { 1, 0, 2, 1 }), "only the 0.9 detection of image 3 reaches 0.85");
    }

    /// <summary>
    /// The per-image path against an independent one: a whole evaluation restricted to the image through
    /// params.imgIds (Accumulate + Summarize, as pycocotools computes it), on random boxes and masks with crowds,
    /// several categories, empty images and more detections than ground truth.
    /// </summary>
    [TestCase(CocoIouType.Bbox)]
    [TestCase(CocoIouType.Segm)]
    public void PerImageApEqualsAnEvaluationRestrictedToTheImage(CocoIouType iouType)
    {
        var random = new Random(7);
        var images = Enumerable.Range(1, 14).Select(i => new CocoImage(i, 64, 48, $"{i}.png")).ToList();
        var categories = new[] { new CocoCategory(1, "a", null), new CocoCategory(2, "b", null), new CocoCategory(5, "c", null) };
        var annotations = new List<CocoAnnotation>();
        var detections = new List<CocoDetection>();
        CocoSegmentation Rectangle(double x, double y, double w, double h) => CocoSegmentation.FromPolygons([[x, y, x + w, y, x + w, y + h, x, y + h]]);
        foreach (var image in images.Where(i => i.Id % 5 != 0))
        {
            for (int n = random.Next(0, 5); n > 0; n--)
            {
                double x = random.Next(0, 40), y = random.Next(0, 30), w = random.Next(4, 24), h = random.Next(4, 18);
                long category = categories[random.Next(3)].Id;
                bool crowd = random.NextDouble() < 0.15;
                annotations.Add(new CocoAnnotation(annotations.Count + 1, image.Id, category, [x, y, w, h], w * h, crowd, Rectangle(x, y, w, h)));
                if (random.NextDouble() < 0.8)
                {
                    double dx = random.Next(-3, 4), dy = random.Next(-3, 4);
                    detections.Add(new CocoDetection(image.Id, category, Math.Round(random.NextDouble(), 2), [x + dx, y + dy, w, h], Rectangle(x + dx, y + dy, w, h)));
                }
            }
            for (int n = random.Next(0, 3); n > 0; n--)
            {
                double x = random.Next(0, 50), y = random.Next(0, 35), w = random.Next(3, 14), h = random.Next(3, 13);
                detections.Add(new CocoDetection(image.Id, categories[random.Next(3)].Id, Math.Round(random.NextDouble(), 2), [x, y, w, h], Rectangle(x, y, w, h)));
            }
        }
        var groundTruth = new CocoDataset(images, annotations, categories);
        var evaluator = new CocoEvaluator(groundTruth, detections, iouType);
        evaluator.Evaluate();
        var aps = evaluator.ImageAps();
        Assert.That(evaluator.ImageIds, Is.EqualTo(images.Select(i => i.Id)));
        int defined = 0;
        for (int i = 0; i < images.Count; i++)
        {
            double restricted = new CocoEvaluator(groundTruth, detections, iouType, new CocoEvalParams { ImageIds = [images[i].Id] }).Run().Stats[0];
            if (restricted == -1) Assert.That(aps[i], Is.NaN, $"image {images[i].Id}");
            else
            {
                Assert.That(aps[i], Is.EqualTo(restricted), $"image {images[i].Id}");
                defined++;
            }
        }
        Assert.That(defined, Is.GreaterThan(5), "the random case must rank most images");
        Assert.That(aps.Count(a => !double.IsNaN(a) && a > 0 && a < 1), Is.GreaterThan(2), "and give partial APs, not only 0 and 1");
    }

    [Test]
    public void ImageApsNeedsEvaluateFirst()
    {
        var (groundTruth, detections) = HandCase();
        Assert.Throws<InvalidOperationException>(() => new CocoEvaluator(groundTruth, detections, CocoIouType.Bbox).ImageAps());
    }

    [Test]
    public void ResultsOfAnImageOrCategoryTheGroundTruthLacksAreRefusedNamingBothFiles()
    {
        var (groundTruth, detections) = HandCase();
        var unknownImage = detections.Append(new CocoDetection(99, 1, 0.5, [0, 0, 5, 5], null)).ToList();
        var e = Assert.Throws<VimException>(() => DetectionResultAnalysis.Score(groundTruth, unknownImage, CocoIouType.Bbox, 0.3, "gt.json", "results.json"));
        Assert.That(e!.Message, Does.Contain("results.json: [13]: image_id 99 is not an image of the ground truth gt.json"));
        var unknownCategory = detections.Append(new CocoDetection(1, 4, 0.5, [0, 0, 5, 5], null)).ToList();
        e = Assert.Throws<VimException>(() => DetectionResultAnalysis.Score(groundTruth, unknownCategory, CocoIouType.Bbox, 0.3, "gt.json", "results.json"));
        Assert.That(e!.Message, Does.Contain("results.json: [13]: category_id 4 is not a category of the ground truth gt.json (its ids: 1, 2, 3)"));
    }

    private static ImageScore Scored(int index, double score) => new(index, $"{(char)('a' + index)}.jpg", score, []);

    [Test]
    public void RankingSortsAsMmdetAndSplitsTheTopK()
    {
        // a 0.5, b 1, c 0, d 1, e 0, f undefined, g 0.25. mmdet sorts ascending, stably: c e g a b d; the worst are the
        // first k, the best the last k, so among ties the worst list takes the earliest images and the best the latest.
        var images = new[] { Scored(0, 0.5), Scored(1, 1), Scored(2, 0), Scored(3, 1), Scored(4, 0), Scored(5, double.NaN), Scored(6, 0.25) };
        var ranking = ImageRanking.Rank(images, 2);
        Assert.That(ranking.Ranked.Select(i => i.Image), Is.EqualTo(new[] { "d.jpg", "b.jpg", "a.jpg", "g.jpg", "e.jpg", "c.jpg" }));
        Assert.That(ranking.Best.Select(i => i.Image), Is.EqualTo(new[] { "d.jpg", "b.jpg" }));
        Assert.That(ranking.Worst.Select(i => i.Image), Is.EqualTo(new[] { "c.jpg", "e.jpg" }));
        Assert.That(ranking.Undefined.Select(i => i.Image), Is.EqualTo(new[] { "f.jpg" }));
        Assert.That(ranking.TopK, Is.EqualTo(2));

        // Top-k beyond half the ranked images is cut to half (mmdet: topk = len // 2), so no image is in both lists.
        var all = ImageRanking.Rank(images, 20);
        Assert.That(all.TopK, Is.EqualTo(3));
        Assert.That(all.Best.Select(i => i.Image), Is.EqualTo(new[] { "d.jpg", "b.jpg", "a.jpg" }));
        Assert.That(all.Worst.Select(i => i.Image), Is.EqualTo(new[] { "c.jpg", "e.jpg", "g.jpg" }));
        Assert.That(ImageRanking.Rank([Scored(0, 0.5)], 20).TopK, Is.Zero, "a single ranked image is neither best nor worst");

        var e = Assert.Throws<VimException>(() => ImageRanking.Rank(images, 0));
        Assert.That(e!.Message, Does.StartWith("--topk: expected at least 1, got 0"));
    }

    [Test]
    public void DrawingNamesCarryTheRankPaddedToTheTopKAndTheScoreAsMmdetRoundsIt()
    {
        var images = Enumerable.Range(0, 24).Select(i => Scored(i, i / 23.0)).ToList();
        var ranking = ImageRanking.Rank(images, 12);
        var image = new ImageScore(0, "sub/000123.jpg", 1.0 / 3, []);
        Assert.That(ranking.DrawingName(3, image), Is.EqualTo("03_000123_0.333.png"));
        Assert.That(ranking.DrawingName(12, image with { Score = 1 }), Is.EqualTo("12_000123_1.0.png"));
        Assert.That(ranking.DrawingName(1, image with { Score = 0.5 }), Is.EqualTo("01_000123_0.5.png"));
        Assert.That(ranking.DrawingName(1, image with { Score = 0 }), Is.EqualTo("01_000123_0.0.png"));
        var drawings = ranking.Drawings("out");
        Assert.That(drawings.Select(d => d.Path).Take(2), Is.EqualTo(new[] { Path.Combine("out", "good", "01_x_1.0.png"), Path.Combine("out", "good", "02_w_0.957.png") }));
        Assert.That(drawings[12].Path, Is.EqualTo(Path.Combine("out", "bad", "01_a_0.0.png")));
    }

    /// <summary>
    /// An ADE-layout split of three 4×2 images with 4 classes (reduce_zero_label: raw 0 ignored, raw v is class v − 1).
    /// Image a: labels 0 0 1 1 / 1 ∅ 2 2 against predictions 0 1 1 1 / 1 2 2 0 (∅ ignored). Counted pixels (label, prediction):
    /// (0,0) (0,1) (1,1) (1,1) (1,1) (2,2) (2,0); the prediction 2 at the ignored pixel is left out of both maps.
    /// Class 0: intersection 1, union 2 + 2 − 1 = 3; class 1: 3 and 3 + 4 − 3 = 4; class 2: 1 and 2 + 1 − 1 = 2; class 3 is in
    /// neither (0/0, left out). mIoU = (1/3 + 3/4 + 1/2) / 3 = 19/36.
    /// Image b: every label 0, predictions all 0 but one 3: class 0 7/8, class 3 (in the prediction only) 0/1; mIoU 7/16.
    /// Image c: every pixel ignored: undefined.
    /// </summary>
    internal static (string Root, string Predictions) WriteSegmentationCase(DataTestFiles files)
    {
        files.WriteText("ade/class_names.txt", "wall\nfloor\nsky\ntree\n");
        byte[][] raw = [[1, 1, 2, 2, 2, 0, 3, 3], [1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]];
        byte[][] predicted = [[0, 1, 1, 1, 1, 2, 2, 0], [0, 0, 0, 0, 0, 0, 0, 3], [1, 1, 1, 1, 1, 1, 1, 1]];
        for (int i = 0; i < 3; i++)
        {
            string name = ((char)('a' + i)).ToString();
            files.WriteRgb($"ade/images/validation/{name}.jpg", 2, 4, (y, x) => ((byte)(40 * x), (byte)(100 * y), 90));
            files.WriteGray($"ade/annotations/validation/{name}.png", 2, 4, (y, x) => raw[i][4 * y + x]);
            files.WriteGray($"pred/{name}.png", 2, 4, (y, x) => predicted[i][4 * y + x]);
        }
        return (files.PathOf("ade"), files.PathOf("pred"));
    }

    [Test]
    public void PerImageMiouMatchesTheHandComputedLabelMaps()
    {
        using var files = new DataTestFiles();
        var (root, predictions) = WriteSegmentationCase(files);
        var dataset = SegmentationFolderDataset.Ade20k(root, "validation", SegmentationFolderDataset.ReadClassNames(Path.Combine(root, "class_names.txt")));
        var progress = new StringWriter();
        var scores = SegmentationResultAnalysis.Score(dataset, predictions, progress);
        Assert.That(scores.Select(s => s.Image), Is.EqualTo(new[] { "a.jpg", "b.jpg", "c.jpg" }));
        Assert.That(scores[0].Score, Is.EqualTo(19.0 / 36).Within(1e-12));
        Assert.That(scores[1].Score, Is.EqualTo(7.0 / 16).Within(1e-12));
        Assert.That(scores[2].Score, Is.NaN);
        // Classes the mean ran over, labelled pixels.
        Assert.That(scores.Select(s => s.Details), Is.EqualTo(new[] { new long[] { 3, 7 }, new long[] { 2, 8 }, new long[] { 0, 0 } }));
        Assert.That(progress.ToString(), Does.Contain("scored 3 images in"));

        File.Delete(Path.Combine(predictions, "b.png"));
        var e = Assert.Throws<VimException>(() => SegmentationResultAnalysis.Score(dataset, predictions, null));
        Assert.That(e!.Message, Does.StartWith($"--pred {predictions}: 1 of the 3 images of {Path.Combine(root, "images", "validation")} have no prediction (first: {Path.Combine(predictions, "b.png")})"));
    }

    [Test]
    public void SegmentationPredictionOfAnotherSizeIsRefusedNamingIt()
    {
        using var files = new DataTestFiles();
        var (root, predictions) = WriteSegmentationCase(files);
        files.WriteGray("pred/b.png", 4, 2, (_, _) => 0);
        var dataset = SegmentationFolderDataset.Ade20k(root, "validation", SegmentationFolderDataset.ReadClassNames(Path.Combine(root, "class_names.txt")));
        var e = Assert.Throws<VimException>(() => SegmentationResultAnalysis.Score(dataset, predictions, null));
        Assert.That(e!.Message, Does.StartWith($"{Path.Combine(predictions, "b.png")}: prediction is 2x4 but the label map of"));
    }

    [Test]
    public void ProgressLinesCountTheItemsAndEstimateTheTimeLeftAtThePaceSoFar()
    {
        // 1 of 4 after 30 s: 3 more at 30 s each.
        Assert.That(Vim.Data.ItemProgress.Line(1, 4, "images", 30), Is.EqualTo("  1/4 images (25%), 0:30 elapsed, about 1:30 left"));
        Assert.That(Vim.Data.ItemProgress.Line(3, 4, "drawings", 90), Is.EqualTo("  3/4 drawings (75%), 1:30 elapsed, about 0:30 left"));
        var every = new StringWriter();
        var progress = new Vim.Data.ItemProgress(every, 3, "images", intervalSeconds: 0);
        for (int i = 0; i < 3; i++) progress.Advance();
        Assert.That(every.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(" (")[0]), Is.EqualTo(new[] { "  1/3 images", "  2/3 images", "  3/3 images" }));
        var seldom = new StringWriter();
        progress = new Vim.Data.ItemProgress(seldom, 3, "images", intervalSeconds: 3600);
        for (int i = 0; i < 3; i++) progress.Advance();
        Assert.That(seldom.ToString(), Is.Empty, "no line before the interval has passed");
    }

    private static Mat Half(Mat image, int half, int width) => new(image, new Rect(half * width, 0, width, image.Rows));

    [Test]
    public void AnalyzeDetWritesTheRankedDrawingsSideBySideAndTheTable()
    {
        using var files = new DataTestFiles();
        string gt = files.WriteText("gt.json", GroundTruthJson), results = files.WriteText("results.json", ResultsJson);
        for (int i = 1; i <= 11; i++) files.WriteRgb($"images/img{i}.png", 100, 100, (y, x) => ((byte)(2 * x), (byte)(2 * y), (byte)(20 * i)));
        string outDir = files.PathOf("out");
        // An earlier run's drawing goes; a file of the user's stays.
        files.WriteText("out/good/7_img3_0.5.png", "old");
        files.WriteText("out/good/notes.png", "mine");

        var (code, output) = EvalCliAndReportTests.RunCli("eval", "analyze", "det", "--gt", gt, "--results", results, "--images", files.PathOf("images"),
            "--out", outDir, "--topk", "2");
        Assert.That(code, Is.Zero, output);
        // Images 1, 4, 9 and 10 tie at AP 1 (the same precision table each): mmdet's stable ascending sort leaves the
        // latest last, so the best list starts 10, 9. The worst: 5 (AP 0), then 2 (0.3).
        Assert.That(Directory.GetFiles(Path.Combine(outDir, "good")).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "1_img10_1.0.png", "2_img9_1.0.png", "notes.png" }));
        Assert.That(Directory.GetFiles(Path.Combine(outDir, "bad")).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "1_img5_0.0.png", "2_img2_0.3.png" }));
        Assert.That(output, Does.Contain("11 images: 9 ranked by bbox_ap (mean 0.644), 2 not ranked (no non-crowd ground truth: AP undefined)"));
        Assert.That(output, Does.Contain("replacing 1 of an earlier run"));

        foreach (var drawing in Directory.GetFiles(outDir, "*_img*.png", SearchOption.AllDirectories))
        {
            using var image = Cv2.ImRead(drawing);
            Assert.That((image.Cols, image.Rows), Is.EqualTo((200, 100)), drawing);
        }
        // Image 5 has ground truth and no detection: the ground truth is drawn on the left, the right half is the image as it was.
        using var original = Cv2.ImRead(files.PathOf("images/img5.png"));
        using var worst = Cv2.ImRead(Path.Combine(outDir, "bad", "1_img5_0.0.png"));
        using var left = Half(worst, 0, 100);
        using var right = Half(worst, 1, 100);
        Assert.That(Cv2.Norm(right, original, NormTypes.L1), Is.Zero, "no detection: the right half is the image");
        var (r, g, b) = DetectionVisualizer.Colour(0);
        Assert.That(left.At<Vec3b>(30, 69), Is.EqualTo(new Vec3b(b, g, r)), "the cat's box (30..70) in the cat's colour on the left");

        var csv = File.ReadAllLines(Path.Combine(outDir, "scores.csv"));
        Assert.That(csv[0], Is.EqualTo("rank,image,bbox_ap,ground_truths,crowd_regions,detections,detections_drawn"));
        AssertRow(csv[1], "1", "img10.png", 1.0, "1,1,2,2");
        AssertRow(csv[8], "8", "img2.png", 0.3, "1,0,1,1");
        AssertRow(csv[9], "9", "img5.png", 0.0, "1,0,0,0");
        Assert.That(csv[10..], Is.EqualTo(new[] { ",img6.png,,0,0,1,1", ",img7.png,,0,0,0,0" }));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "scores.json")));
        var root = json.RootElement;
        Assert.That(root.GetProperty("topk").GetInt32(), Is.EqualTo(2));
        Assert.That(root.GetProperty("good").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "img10.png", "img9.png" }));
        Assert.That(root.GetProperty("bad").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "img5.png", "img2.png" }));
        Assert.That(root.GetProperty("images")[7].GetProperty("bbox_ap").GetDouble(), Is.EqualTo(0.3).Within(1e-12));
        var undefined = root.GetProperty("images")[9];
        Assert.That(undefined.GetProperty("image").GetString(), Is.EqualTo("img6.png"));
        Assert.That(undefined.GetProperty("bbox_ap").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(undefined.GetProperty("rank").ValueKind, Is.EqualTo(JsonValueKind.Null));
    }

    /// <summary>A scores.csv row: rank, image, the score (to 1e-12), then the detail columns as written.</summary>
    private static void AssertRow(string row, string rank, string image, double score, string details)
    {
        var fields = row.Split(',', 4);
        Assert.That(fields[..2], Is.EqualTo(new[] { rank, image }), row);
        Assert.That(double.Parse(fields[2], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(score).Within(1e-12), row);
        Assert.That(fields[3], Is.EqualTo(details), row);
    }

    [Test]
    public void AnalyzeDetRefusesBadOptionsAndInputsByName()
    {
        using var files = new DataTestFiles();
        string gt = files.WriteText("gt.json", GroundTruthJson), results = files.WriteText("results.json", ResultsJson);
        string images = files.PathOf("images");
        Directory.CreateDirectory(images);
        string[] Args(params string[] extra) => ["eval", "analyze", "det", "--gt", gt, "--results", results, "--images", images, "--out", files.PathOf("out"), .. extra];

        Assert.That(EvalCliAndReportTests.Refused(Args("--topk", "0")), Does.Contain("--topk: expected at least 1, got 0"));
        Assert.That(EvalCliAndReportTests.Refused(Args("--score-thr", "1.5")), Does.Contain("--score-thr: expected a number in [0, 1], got 1.5"));
        Assert.That(EvalCliAndReportTests.Refused(Args("--iou-type", "mask")), Does.Contain("--iou-type: expected bbox or segm, got 'mask'"));
        // The images to draw are not in the folder.
        Assert.That(EvalCliAndReportTests.Refused(Args("--topk", "1")),
            Does.Contain($"--images {images}: 2 of the 2 images to draw are not in this folder (first: img10.png, img5.png)"));
        Assert.That(Directory.Exists(Path.Combine(files.PathOf("out"), "good")), Is.False, "nothing drawn before the refusal");

        var stray = files.WriteText("stray.json", ResultsJson.Replace("{\"image_id\": 11,", "{\"image_id\": 12,", StringComparison.Ordinal));
        string[] strayArgs = ["eval", "analyze", "det", "--gt", gt, "--results", stray, "--images", images, "--out", files.PathOf("out")];
        Assert.That(EvalCliAndReportTests.Refused(strayArgs), Does.Contain($"{stray}: [12]: image_id 12 is not an image of the ground truth {gt}"));
    }

    [Test]
    public void AnalyzeSegDrawsGroundTruthBesidePredictionOverlays()
    {
        using var files = new DataTestFiles();
        var (root, predictions) = WriteSegmentationCase(files);
        string outDir = files.PathOf("out");
        var (code, output) = EvalCliAndReportTests.RunCli("eval", "analyze", "seg", "--root", root, "--pred", predictions, "--out", outDir, "--topk", "5");
        Assert.That(code, Is.Zero, output);
        // Two ranked images: top-k cut to 1. 19/36 = 0.5278 and 7/16 = 0.4375 (a tie at 3 decimals, to the even 0.438, as Python's round).
        Assert.That(Directory.GetFiles(Path.Combine(outDir, "good")).Select(Path.GetFileName), Is.EqualTo(new[] { "1_a_0.528.png" }));
        Assert.That(Directory.GetFiles(Path.Combine(outDir, "bad")).Select(Path.GetFileName), Is.EqualTo(new[] { "1_b_0.438.png" }));
        Assert.That(output, Does.Contain("3 images: 2 ranked by miou (mean 0.483), 1 not ranked (every pixel ignored: mIoU undefined)"));

        // Left: the ground truth's overlay; right: the prediction's; each the blend `vim test` writes.
        using var drawing = Cv2.ImRead(Path.Combine(outDir, "bad", "1_b_0.438.png"));
        Assert.That((drawing.Cols, drawing.Rows), Is.EqualTo((8, 2)));
        using var image = ImageDecoder.ReadBgr(Path.Combine(root, "images", "validation", "b.jpg"));
        using var truth = SegmentationVisualizer.Overlay(image, Enumerable.Repeat((ushort)0, 8).ToArray(), 255);
        using var predicted = SegmentationVisualizer.Overlay(image, [0, 0, 0, 0, 0, 0, 0, 3], null);
        using var left = Half(drawing, 0, 4);
        using var right = Half(drawing, 1, 4);
        Assert.That(Cv2.Norm(left, truth, NormTypes.L1), Is.Zero);
        Assert.That(Cv2.Norm(right, predicted, NormTypes.L1), Is.Zero);
        Assert.That(Cv2.Norm(left, right, NormTypes.L1), Is.GreaterThan(0), "the prediction's class 3 pixel differs");

        var csv = File.ReadAllLines(Path.Combine(outDir, "scores.csv"));
        Assert.That(csv, Has.Length.EqualTo(4));
        Assert.That(csv[0], Is.EqualTo("rank,image,miou,classes,labelled_pixels"));
        AssertRow(csv[1], "1", "a.jpg", 19.0 / 36, "3,7");
        Assert.That(csv[2..], Is.EqualTo(new[] { "2,b.jpg,0.4375,2,8", ",c.jpg,,0,0" }));
    }
}
