using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Detection;

namespace Vim.Tests.Eval;

/// <summary>
/// The error analysis (mmdet's coco_error_analysis.py) on tiny cases whose stage APs follow by reasoning, stated in each
/// test, and on random cases against our plain COCOeval and against mmdet's procedure carried out literally.
/// </summary>
public class CocoErrorAnalysisTests
{
    private static readonly CocoErrorStage[] AllStages = Enum.GetValues<CocoErrorStage>();

    private static CocoAnnotation Gt(long id, long image, long category, double[] box) => new(id, image, category, box, box[2] * box[3], false, null);

    private static CocoDetection Dt(long image, long category, double score, double[] box) => new(image, category, score, box, null);

    private static CocoDataset Dataset(int images, CocoAnnotation[] annotations, params CocoCategory[] categories) =>
        new(Enumerable.Range(1, images).Select(i => new CocoImage(i, 100, 100, null)).ToList(), annotations, categories);

    /// <summary>The stage APs of one category (or the overall row when <paramref name="k"/> is null) in percent, area "all".</summary>
    private static double[] StageAps(CocoErrorAnalysis analysis, int? k, int area = 0) =>
        AllStages.Select(s => 100 * (k is { } c ? analysis.Ap(s, c, area) : analysis.OverallAp(s, area))).ToArray();

    [Test]
    public void ADetectionAtIou06CountsFromC50On()
    {
        // Object [0,0,10,10], detection [0,0,10,6]: IoU 60/100 = 0.6. Below 0.75 it is a false positive and the object is
        // never found (AP 0); from 0.5 on it is the object, found first: precision 1 at every recall (AP 100), and every
        // later stage forgives only more.
        var gt = Dataset(1, [Gt(1, 1, 1, [0, 0, 10, 10])], new CocoCategory(1, "thing", "stuff"));
        var analysis = CocoErrorAnalysis.Run(gt, [Dt(1, 1, 0.9, [0, 0, 10, 6])], CocoIouType.Bbox);
        Assert.That(StageAps(analysis, 0), Is.EqualTo(new double[] { 0, 100, 100, 100, 100, 100, 100 }).Within(1e-9));
        Assert.That(StageAps(analysis, null), Is.EqualTo(StageAps(analysis, 0)).Within(1e-9), "one category: overall = it");
        // The object's area, 100, is small: small equals all, and medium and large have no object, so they are undefined.
        Assert.That(analysis.AreaRanges.Select(r => r.Label), Is.EqualTo(new[] { "all", "small", "medium", "large" }));
        Assert.That(StageAps(analysis, 0, area: 1), Is.EqualTo(StageAps(analysis, 0)).Within(1e-9));
        Assert.That(analysis.IsDefined(0, 2) || analysis.IsDefined(0, 3), Is.False);
        Assert.That(analysis.OverallAp(CocoErrorStage.FN, 2), Is.EqualTo(-1));
    }

    [Test]
    public void ADetectionAtIou03CountsOnlyFromLocOn()
    {
        // Detection [0,0,10,3] on the object [0,0,10,10]: IoU 30/100 = 0.3, a false positive at 0.75 and 0.5 (AP 0), a hit
        // at Loc's 0.1 (AP 100).
        var gt = Dataset(1, [Gt(1, 1, 1, [0, 0, 10, 10])], new CocoCategory(1, "thing", "stuff"));
        var analysis = CocoErrorAnalysis.Run(gt, [Dt(1, 1, 0.9, [0, 0, 10, 3])], CocoIouType.Bbox);
        Assert.That(StageAps(analysis, 0), Is.EqualTo(new double[] { 0, 0, 100, 100, 100, 100, 100 }).Within(1e-9));
    }

    /// <summary>
    /// cat and dog are animals, car a vehicle. Image 1 holds a dog, image 2 a cat, image 3 a car (each [0,0,20,20]).
    /// cat detects the dog (0.9) and its own cat (0.8); car detects the dog (0.9) and its own car (0.8); nothing detects dog.
    /// </summary>
    internal const string ConfusedClassesJson = """
    {
      "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}, {"id": 3, "width": 100, "height": 100}],
      "annotations": [
        {"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 3, "image_id": 3, "category_id": 3, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0}
      ],
      "categories": [{"id": 1, "name": "cat", "supercategory": "animal"}, {"id": 2, "name": "dog", "supercategory": "animal"},
                     {"id": 3, "name": "car", "supercategory": "vehicle"}]
    }
    """;

    internal const string ConfusedClassesResultsJson = """
    [
      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},
      {"image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.8},
      {"image_id": 1, "category_id": 3, "bbox": [0, 0, 20, 20], "score": 0.9},
      {"image_id": 3, "category_id": 3, "bbox": [0, 0, 20, 20], "score": 0.8}
    ]
    """;

    /// <summary>The stage APs (%) <see cref="ConfusedClassesJson"/> must give, category by category, and why.</summary>
    internal static readonly double[][] ConfusedClassesAps =
    [
        // cat: a false positive (on the dog) before its true positive: recall 0 then 1 at precision 0 then 1/2, so the
        // interpolated precision is 1/2 everywhere (AP 50) until the dog stops counting against it. The dog shares cat's
        // supercategory, so Sim already makes it a crowd region of cat, the detection on it is ignored: AP 100.
        [50, 50, 50, 100, 100, 100, 100],
        // dog: found by no dog detection: precision 0 everywhere until FN (no object of dog is missed any more).
        [0, 0, 0, 0, 0, 0, 100],
        // car: the same false positive on the dog, but the dog is no vehicle: Sim leaves it, only Oth lifts it.
        [50, 50, 50, 50, 100, 100, 100],
    ];

    [Test]
    public void ConfusionWithinASupercategoryIsLiftedBySimAcrossSupercategoriesOnlyByOth()
    {
        using var gtJson = JsonDocument.Parse(ConfusedClassesJson);
        using var resultsJson = JsonDocument.Parse(ConfusedClassesResultsJson);
        var (gt, detections) = (CocoDataset.Parse(gtJson.RootElement, "gt.json"), CocoResults.Parse(resultsJson.RootElement, "results.json"));
        var analysis = CocoErrorAnalysis.Run(gt, detections, CocoIouType.Bbox);
        Assert.That(analysis.CategoryNames, Is.EqualTo(new[] { "cat", "dog", "car" }));
        for (int k = 0; k < 3; k++)
            Assert.That(StageAps(analysis, k), Is.EqualTo(ConfusedClassesAps[k]).Within(1e-9), analysis.CategoryNames[k]);
        // Overall: the mean of the three categories at each stage.
        var overall = AllStages.Select((_, s) => ConfusedClassesAps.Average(c => c[s])).ToArray();
        Assert.That(StageAps(analysis, null), Is.EqualTo(overall).Within(1e-9));
        Assert.That(overall[(int)CocoErrorStage.Sim], Is.EqualTo(50).Within(1e-12), "(100 + 0 + 50) / 3");
    }

    [Test]
    public void ADetectionOnNothingIsLiftedOnlyByBg()
    {
        // "thing" has one object on image 1 [0,0,20,20]; "other" (another supercategory) one object [30,30,10,10]. The
        // thing detector first fires at [60,60,20,20], on nothing, then finds its object: precision 1/2 at every recall
        // (AP 50) through Oth, since no object of any category lies under the false positive. BG removes it: AP 100.
        var gt = Dataset(1, [Gt(1, 1, 1, [0, 0, 20, 20]), Gt(2, 1, 2, [30, 30, 10, 10])],
            new CocoCategory(1, "thing", "a"), new CocoCategory(2, "other", "b"));
        var analysis = CocoErrorAnalysis.Run(gt, [Dt(1, 1, 0.9, [60, 60, 20, 20]), Dt(1, 1, 0.8, [0, 0, 20, 20]), Dt(1, 2, 0.7, [30, 30, 10, 10])],
            CocoIouType.Bbox);
        Assert.That(StageAps(analysis, 0), Is.EqualTo(new double[] { 50, 50, 50, 50, 50, 100, 100 }).Within(1e-9));
        Assert.That(StageAps(analysis, 1), Is.EqualTo(Enumerable.Repeat(100.0, 7)).Within(1e-9), "other: one detection, on its object");
    }

    [Test]
    public void AMissedObjectIsLiftedOnlyByFn()
    {
        // Two objects (images 1 and 2), one found exactly and first: recall 1/2 at precision 1, never more. Precision is 1
        // at the 51 recall thresholds 0, 0.01, …, 0.50 and 0 at the 50 above: AP 51/101 at every stage up to BG (no
        // detection is wrong, so nothing else is forgiven); FN, with the miss forgiven, is 100.
        var gt = Dataset(2, [Gt(1, 1, 1, [0, 0, 20, 20]), Gt(2, 2, 1, [0, 0, 20, 20])], new CocoCategory(1, "thing", "a"));
        var analysis = CocoErrorAnalysis.Run(gt, [Dt(1, 1, 0.9, [0, 0, 20, 20])], CocoIouType.Bbox);
        double partial = 100.0 * 51 / 101;
        Assert.That(StageAps(analysis, 0), Is.EqualTo(new[] { partial, partial, partial, partial, partial, partial, 100 }).Within(1e-9));
        var bg = analysis.Curve(CocoErrorStage.BG, 0, 0);
        Assert.That(bg.Take(51), Is.All.EqualTo(1.0));
        Assert.That(bg.Skip(51), Is.All.EqualTo(0.0));
    }

    /// <summary>
    /// A random case: 6 categories (two supercategories of two, one alone, one without), 30 images, objects of every
    /// size, detections near objects (often of a confused class, of the same supercategory or not), on background, and
    /// duplicates; a few crowd regions.
    /// </summary>
    private static (CocoDataset GroundTruth, List<CocoDetection> Detections) RandomCase(int seed, bool masks)
    {
        var rng = new Random(seed);
        CocoCategory[] categories =
        [
            new(1, "cat", "animal"), new(2, "dog", "animal"), new(4, "car", "vehicle"), new(5, "bus", "vehicle"),
            new(7, "chair", "furniture"), new(9, "blob", null),
        ];
        const int size = 160;
        var images = Enumerable.Range(0, 30).Select(i => new CocoImage(10 + i, size, size - 20, null)).ToList();
        var annotations = new List<CocoAnnotation>();
        var detections = new List<CocoDetection>();
        double[] RandomBox(double min, double max)
        {
            double w = min + rng.NextDouble() * (max - min), h = min + rng.NextDouble() * (max - min);
            return [Math.Round(rng.NextDouble() * (size - w - 1), 1), Math.Round(rng.NextDouble() * (size - 20 - h - 1), 1), Math.Round(w, 1), Math.Round(h, 1)];
        }
        CocoSegmentation? Outline(double[] b) => masks
            ? CocoSegmentation.FromPolygons([[b[0], b[1], b[0] + b[2], b[1], b[0] + b[2] * 0.6, b[1] + b[3], b[0], b[1] + b[3] * 0.8]])
            : null;
        double Area(double[] b, CocoSegmentation? s, CocoImage image) => s is null ? b[2] * b[3] : s.ToRle(image.Height, image.Width).Area;
        long id = 1;
        foreach (var image in images)
        {
            var objects = new List<(long Category, double[] Box)>();
            for (int g = rng.Next(0, 6); g > 0; g--)
            {
                // Sides of 4 to 110 px: areas on both sides of 32² and 96².
                var box = RandomBox(4, 110);
                long category = categories[rng.Next(categories.Length)].Id;
                bool crowd = rng.NextDouble() < 0.08;
                var outline = Outline(box);
                annotations.Add(new CocoAnnotation(id++, image.Id, category, box, Area(box, outline, image), crowd, outline));
                objects.Add((category, box));
            }
            for (int d = rng.Next(0, 9); d > 0; d--)
            {
                double[] box;
                long category;
                if (objects.Count > 0 && rng.NextDouble() < 0.7)
                {
                    var (objectCategory, b) = objects[rng.Next(objects.Count)];
                    // Jitters from exact to IoU near 0.1: every stage's threshold is crossed somewhere.
                    double j = 0.6 * rng.NextDouble();
                    box = [b[0] + (rng.NextDouble() - 0.5) * j * b[2], b[1] + (rng.NextDouble() - 0.5) * j * b[3], b[2] * (1 + (rng.NextDouble() - 0.5) * j), b[3] * (1 + (rng.NextDouble() - 0.5) * j)];
                    category = rng.NextDouble() < 0.6 ? objectCategory : categories[rng.Next(categories.Length)].Id;
                }
                else
                {
                    box = RandomBox(4, 90);
                    category = categories[rng.Next(categories.Length)].Id;
                }
                detections.Add(new CocoDetection(image.Id, category, Math.Round(rng.NextDouble(), 2), box,
                    masks ? CocoSegmentation.FromRle(Outline(box)!.ToRle(image.Height, image.Width)) : null));
            }
        }
        return (new CocoDataset(images, annotations, categories), detections);
    }

    [TestCase(CocoIouType.Bbox, 11)]
    [TestCase(CocoIouType.Bbox, 12)]
    [TestCase(CocoIouType.Segm, 13)]
    public void C75AndC50AreCocoEvalsApAtThoseThresholds(CocoIouType iouType, int seed)
    {
        var (gt, detections) = RandomCase(seed, masks: iouType == CocoIouType.Segm);
        var analysis = CocoErrorAnalysis.Run(gt, detections, iouType);
        var plain = new CocoEvaluator(gt, detections, iouType).Run();
        Assert.That(plain.Stats[1], Is.GreaterThan(0.1), "a case with something to find");
        Assert.That(100 * analysis.OverallAp(CocoErrorStage.C50, 0), Is.EqualTo(100 * plain.Stats[1]).Within(1e-9), "AP50");
        Assert.That(100 * analysis.OverallAp(CocoErrorStage.C75, 0), Is.EqualTo(100 * plain.Stats[2]).Within(1e-9), "AP75");
        var acc = plain.Accumulation;
        for (int a = 0; a < analysis.AreaRanges.Count; a++)
        {
            string area = analysis.AreaRanges[a].Label;
            Assert.That(analysis.OverallAp(CocoErrorStage.C50, a), Is.EqualTo(acc.Mean(true, 0.5, area, 100)).Within(1e-12), area);
            Assert.That(analysis.OverallAp(CocoErrorStage.C75, a), Is.EqualTo(acc.Mean(true, 0.75, area, 100)).Within(1e-12), area);
            for (int k = 0; k < analysis.CategoryIds.Count; k++)
            {
                Assert.That(analysis.Ap(CocoErrorStage.C50, k, a), Is.EqualTo(acc.Mean(true, 0.5, area, 100, k)).Within(1e-12), $"{area} {k}");
                Assert.That(analysis.Ap(CocoErrorStage.C75, k, a), Is.EqualTo(acc.Mean(true, 0.75, area, 100, k)).Within(1e-12), $"{area} {k}");
            }
        }
    }

    /// <summary>
    /// Sim and Oth against mmdet's analyze_individual_category done literally: the whole ground truth copied with every
    /// annotation of a chosen other category turned into a crowd region of category k, all categories evaluated with all
    /// detections at IoU 0.1, k's precision read out (the analysis relabels only on images k detects on and skips
    /// evaluations that relabel nothing). Then the stages' order: each curve lies on or above the previous one from Loc on.
    /// </summary>
    /// <remarks>
    /// With <paramref name="firstMaskOnly"/> the first detection has a mask and no box, so loadRes reads every detection
    /// as a mask (area from the mask, not w·h) though the others have boxes: a per-category evaluation handed only its own
    /// detections would then start with a boxed one and read them as boxes.
    /// </remarks>
    [TestCase(CocoIouType.Bbox, 21, false)]
    [TestCase(CocoIouType.Segm, 22, false)]
    [TestCase(CocoIouType.Segm, 23, true)]
    public void SimAndOthFollowMmdetsProcedureAndEachStageLiesOnThePrevious(CocoIouType iouType, int seed, bool firstMaskOnly)
    {
        var (gt, detections) = RandomCase(seed, masks: iouType == CocoIouType.Segm);
        if (firstMaskOnly) detections[0] = detections[0] with { Bbox = null };
        var analysis = CocoErrorAnalysis.Run(gt, detections, iouType);
        var superOf = gt.Categories.ToDictionary(c => c.Id, c => c.Supercategory);
        int lifted = 0;
        for (int k = 0; k < analysis.CategoryIds.Count; k++)
        {
            long id = analysis.CategoryIds[k];
            foreach (var (stage, relabel) in new (CocoErrorStage, Func<long, bool>)[]
            {
                (CocoErrorStage.Sim, other => other != id && superOf[id] is { } s && superOf[other] == s),
                (CocoErrorStage.Oth, other => other != id),
            })
            {
                var relabelled = gt.Annotations.Select(a => relabel(a.CategoryId) ? a with { CategoryId = id, IsCrowd = true } : a).ToList();
                var evaluator = new CocoEvaluator(new CocoDataset(gt.Images, relabelled, gt.Categories), detections, iouType,
                    new CocoEvalParams { IouThresholds = [0.1], MaxDetections = [100] });
                evaluator.Evaluate();
                var acc = evaluator.Accumulate();
                for (int a = 0; a < analysis.AreaRanges.Count; a++)
                {
                    var expected = Enumerable.Range(0, acc.R).Select(r => acc.PrecisionAt(0, r, k, a, 0)).ToArray();
                    Assert.That(analysis.Curve(stage, k, a), Is.EqualTo(expected), $"{stage} {analysis.CategoryNames[k]} {analysis.AreaRanges[a].Label}");
                    if (stage != CocoErrorStage.Loc && analysis.Ap(stage, k, a) > analysis.Ap(CocoErrorStage.Loc, k, a)) lifted++;
                }
            }
            for (int a = 0; a < analysis.AreaRanges.Count; a++)
            {
                if (!analysis.IsDefined(k, a)) continue;
                for (var s = CocoErrorStage.Loc; s < CocoErrorStage.FN; s++)
                {
                    var lower = analysis.Curve(s, k, a);
                    var upper = analysis.Curve(s + 1, k, a);
                    for (int r = 0; r < lower.Length; r++) Assert.That(upper[r], Is.GreaterThanOrEqualTo(lower[r]), $"{s + 1} under {s} at recall {r}");
                }
            }
        }
        Assert.That(lifted, Is.GreaterThan(0), "some confusion was forgiven, or the comparison proves little");
    }

    /// <summary>
    /// The masks are shared, not converted per stage: over the analysis's 1 + 2·K evaluations (C75/C50/Loc at once, then Sim
    /// and Oth per category, each relabelling other categories' annotations as crowd regions) the cache converts each
    /// ground-truth polygon and each detection's RLE exactly once. mmdet's literal procedure run afterwards through the same
    /// cache (a relabelled copy of every annotation per category) converts nothing more and still gives the analysis's curves,
    /// which the test above checks against evaluations converting their own masks.
    /// </summary>
    [Test]
    public void EveryMaskIsConvertedOnceForAllTheStages()
    {
        var (gt, detections) = RandomCase(31, masks: true);
        var masks = new CocoMaskCache();
        var analysis = CocoErrorAnalysis.Run(gt, detections, CocoIouType.Segm, masks: masks);
        Assert.That(gt.Annotations.All(a => a.Segmentation is { Kind: CocoSegmentationKind.Polygons }), "the ground truth is polygons");
        Assert.That(masks.Conversions, Is.EqualTo(gt.Annotations.Count + detections.Count), "one conversion per annotation and per detection");
        long analysisHits = masks.Hits;
        // Sim and Oth read each category's detections and its relabelled regions again: from the cache.
        Assert.That(analysisHits, Is.GreaterThan(detections.Count), "the per-category evaluations took their masks from the cache");

        int othRelabelled = 0;
        for (int k = 0; k < analysis.CategoryIds.Count; k++)
        {
            long id = analysis.CategoryIds[k];
            var relabelled = gt.Annotations.Select(a => a.CategoryId != id ? a with { CategoryId = id, IsCrowd = true } : a).ToList();
            othRelabelled += relabelled.Count(a => a.IsCrowd);
            var evaluator = new CocoEvaluator(new CocoDataset(gt.Images, relabelled, gt.Categories), detections, CocoIouType.Segm,
                new CocoEvalParams { IouThresholds = [0.1], MaxDetections = [100] }, masks);
            evaluator.Evaluate();
            var acc = evaluator.Accumulate();
            for (int a = 0; a < analysis.AreaRanges.Count; a++)
                Assert.That(analysis.Curve(CocoErrorStage.Oth, k, a), Is.EqualTo(Enumerable.Range(0, acc.R).Select(r => acc.PrecisionAt(0, r, k, a, 0))),
                    $"Oth {analysis.CategoryNames[k]} {analysis.AreaRanges[a].Label}");
        }
        Assert.That(othRelabelled, Is.GreaterThan(gt.Annotations.Count), "the copies outnumber the annotations: sharing saved conversions");
        Assert.That(masks.Conversions, Is.EqualTo(gt.Annotations.Count + detections.Count), "the relabelled copies found their originals' masks");
        Assert.That(masks.Hits - analysisHits, Is.EqualTo(analysis.CategoryIds.Count * (gt.Annotations.Count + detections.Count)),
            "each literal evaluation read every annotation and detection from the cache");
    }

    /// <summary>
    /// `vim test --error-analysis` computes the plain mask AP (<see cref="DetectionTask.EvaluateMasks"/>) into the cache the
    /// analysis of the masks then reads. Every number of that AP (the 12 stats, precision, recall and scores tables)
    /// equals, to the bit, the AP of an evaluation converting its own masks; it converts each ground-truth polygon and each
    /// detection's RLE once; the analysis after it, handed the detections as mask AP reads them (a fresh list of copies
    /// without boxes, as `vim test` hands them), converts nothing more and gives the curves of an analysis with a cache of
    /// its own.
    /// </summary>
    [Test]
    public void ThePlainMaskApSharingTheAnalysisMasksIsTheApWithoutIt()
    {
        var (gt, detections) = RandomCase(41, masks: true);
        var own = DetectionTask.EvaluateMasks(gt, detections);
        var masks = new CocoMaskCache();
        var shared = DetectionTask.EvaluateMasks(gt, detections, masks);
        Assert.That(own.Stats[0], Is.GreaterThan(0.1), "a case with something to find");
        Assert.That(shared.Stats, Is.EqualTo(own.Stats));
        Assert.That(shared.Accumulation.Precision, Is.EqualTo(own.Accumulation.Precision));
        Assert.That(shared.Accumulation.Recall, Is.EqualTo(own.Accumulation.Recall));
        Assert.That(shared.Accumulation.Scores, Is.EqualTo(own.Accumulation.Scores));
        Assert.That(masks.Conversions, Is.EqualTo(gt.Annotations.Count + detections.Count), "each polygon and each RLE converted once");

        var analysis = CocoErrorAnalysis.Run(gt, DetectionTask.AsMaskResults(detections), CocoIouType.Segm, masks: masks);
        Assert.That(masks.Conversions, Is.EqualTo(gt.Annotations.Count + detections.Count), "the analysis converted nothing more");
        var alone = CocoErrorAnalysis.Run(gt, DetectionTask.AsMaskResults(detections), CocoIouType.Segm);
        for (int k = 0; k < analysis.CategoryIds.Count; k++)
            for (int a = 0; a < analysis.AreaRanges.Count; a++)
                foreach (var stage in AllStages)
                    Assert.That(analysis.Curve(stage, k, a), Is.EqualTo(alone.Curve(stage, k, a)), $"{stage} {analysis.CategoryNames[k]} {analysis.AreaRanges[a].Label}");
    }

    /// <summary>
    /// A polygon's mask depends on the image it is read in: the cache keys it by the image size too. One ground-truth
    /// square (10..70 on both axes) and one detection outline (x 10..50, y 10..40), the same objects read in a 100×100 and
    /// in a 40×50 image: four conversions. In the large image the masks are 60×60 and 40×30 px, IoU 1200 / 3600 = 1/3, no
    /// match from IoU 0.5 on (AP 0); in the small one the square is clipped to the detection's 40×30: IoU 1, AP 1. An
    /// evaluator converting its own masks agrees.
    /// </summary>
    [Test]
    public void APolygonReadInImagesOfTwoSizesIsTwoMasks()
    {
        var annotation = new CocoAnnotation(1, 1, 1, [10, 10, 60, 60], 3600, false, CocoSegmentation.FromPolygons([[10, 10, 70, 10, 70, 70, 10, 70]]));
        var detection = new CocoDetection(1, 1, 0.9, null, CocoSegmentation.FromPolygons([[10, 10, 50, 10, 50, 40, 10, 40]]));
        CocoDataset InImage(int height, int width) => new([new CocoImage(1, width, height, null)], [annotation], [new CocoCategory(1, "thing", null)]);
        var masks = new CocoMaskCache();
        double Ap(CocoDataset gt, CocoMaskCache? cache) => new CocoEvaluator(gt, [detection], CocoIouType.Segm, masks: cache).Run().Stats[0];
        Assert.That(Ap(InImage(100, 100), masks), Is.EqualTo(0).Within(1e-12));
        Assert.That(Ap(InImage(40, 50), masks), Is.EqualTo(1).Within(1e-12));
        Assert.That(masks.Conversions, Is.EqualTo(4), "each outline at each size");
        Assert.That(Ap(InImage(100, 100), masks), Is.EqualTo(0).Within(1e-12), "from the cache");
        Assert.That(masks.Conversions, Is.EqualTo(4));
        Assert.That(Ap(InImage(100, 100), null), Is.EqualTo(0).Within(1e-12));
        Assert.That(Ap(InImage(40, 50), null), Is.EqualTo(1).Within(1e-12));
    }

    [Test]
    public void AreaRangesAreNamedFromCocosAndBadNamesAreRefusedByOption()
    {
        Assert.That(CocoErrorAnalysis.AreaRangesNamed("large, all", "--areas").Select(r => (r.Label, r.Min, r.Max)),
            Is.EqualTo(new[] { ("large", 96.0 * 96, 1e10), ("all", 0.0, 1e10) }));
        Assert.That(Assert.Throws<Vim.Core.VimException>(() => CocoErrorAnalysis.AreaRangesNamed("all,tiny", "--areas"))!.Message,
            Does.StartWith("--areas: 'tiny' is not an area range").And.Contain("all, small, medium, large"));
        Assert.That(Assert.Throws<Vim.Core.VimException>(() => CocoErrorAnalysis.AreaRangesNamed("small,small", "--areas"))!.Message,
            Does.Contain("named twice"));
        Assert.That(Assert.Throws<Vim.Core.VimException>(() => CocoErrorAnalysis.AreaRangesNamed(" , ", "--areas"))!.Message,
            Does.Contain("no area range"));
    }
}
