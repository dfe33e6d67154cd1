using NUnit.Framework;
using Vim.Data.Coco;
using Vim.Data.Evaluation;

namespace Vim.Tests.Eval;

/// <summary>Small COCO cases whose expected numbers are derived by hand in the comments.</summary>
public class HandComputedCocoTests
{
    private static CocoAnnotation Gt(long id, long image, long cat, double[] box, double area, bool crowd = false) =>
        new(id, image, cat, box, area, crowd, null);

    private static CocoDetection Dt(long image, long cat, double score, double[] box) => new(image, cat, score, box, null);

    [Test]
    public void CrowdRegionAndDuplicateDetections()
    {
        // One 100x100 image, one category. GT g1 [10,10,20,20] area 400 (small); crowd GT [50,50,40,40].
        // Detections by score: d2 0.95 [10,10,20,13.2] (IoU with g1 = 264/400 = 0.66), d1 0.90 = g1
        // (IoU 1), d3 0.70 [55,55,10,10] inside the crowd (crowd IoU = 100/100 = 1), d4 0.60 far away.
        // IoU thresholds 0.50..0.65 (4 of 10): d2 takes g1 (TP), d1 finds g1 taken -> FP, d3 matches the
        // crowd -> ignored, d4 FP. Cumulative tp 1,1,-,1 / fp 0,1,-,2: recall reaches 1 at the first
        // detection, so precision = 1 at every recall point: AP_t = 1.
        // Thresholds 0.70..0.95 (6): d2 FP, d1 TP, d3 ignored, d4 FP. rc = 0,1,1,1; pr = 0,.5,.5,1/3;
        // the interpolated precision is .5 at every recall point: AP_t = 0.5.
        // AP = (4*1 + 6*0.5)/10 = 0.7; AP50 = 1; AP75 = 0.5. Everything is small (g1 400 <= 32^2; the
        // crowd is always ignored): AP_small = 0.7, medium/large have no non-ignored GT -> -1.
        // AR@1 keeps only d2: recall 1 at the 4 low thresholds, 0 above -> 0.4. AR@10 = AR@100 = 1.
        var gt = new CocoDataset(
            [new CocoImage(1, 100, 100, null)],
            [Gt(1, 1, 1, [10, 10, 20, 20], 400), Gt(2, 1, 1, [50, 50, 40, 40], 1600, crowd: true)],
            [new CocoCategory(1, "thing", null)]);
        var dt = new List<CocoDetection>
        {
            Dt(1, 1, 0.90, [10, 10, 20, 20]),
            Dt(1, 1, 0.60, [0, 80, 10, 10]),
            Dt(1, 1, 0.95, [10, 10, 20, 13.2]),
            Dt(1, 1, 0.70, [55, 55, 10, 10]),
        };
        var s = new CocoEvaluator(gt, dt, CocoIouType.Bbox).Run();
        double[] expected = [0.7, 1, 0.5, 0.7, -1, -1, 0.4, 1, 1, 1, -1, -1];
        Assert.That(s.Stats, Is.EqualTo(expected).Within(1e-12));
    }

    /// <summary>
    /// Three images (the third empty), categories cat (1), dog (2) and bird (3, detections but no GT).
    /// Image 1: cat A [0,0,10,10] area 100 (small), dog B [20,20,40,40] area 1600 (medium).
    /// Image 2: cat C [0,0,100,100] area 10000 (large).
    /// Detections: cat a1 0.5 = A; cat c1 0.9 = C and its duplicate c2 0.8; dog b2 0.95 [100,100,5,5]
    /// (area 25, a miss) and b1 0.3 = B; bird 0.99 on image 2.
    /// </summary>
    private static (CocoDataset, List<CocoDetection>) ThreeImages()
    {
        var gt = new CocoDataset(
            [new CocoImage(1, 200, 200, null), new CocoImage(2, 200, 200, null), new CocoImage(3, 200, 200, null)],
            [Gt(10, 1, 1, [0, 0, 10, 10], 100), Gt(11, 1, 2, [20, 20, 40, 40], 1600), Gt(12, 2, 1, [0, 0, 100, 100], 10000)],
            [new CocoCategory(1, "cat", null), new CocoCategory(2, "dog", null), new CocoCategory(3, "bird", null)]);
        var dt = new List<CocoDetection>
        {
            Dt(1, 1, 0.5, [0, 0, 10, 10]),
            Dt(2, 1, 0.9, [0, 0, 100, 100]),
            Dt(2, 1, 0.8, [0, 0, 100, 100]),
            Dt(1, 2, 0.95, [100, 100, 5, 5]),
            Dt(1, 2, 0.3, [20, 20, 40, 40]),
            Dt(2, 3, 0.99, [10, 10, 10, 10]),
        };
        return (gt, dt);
    }

    [Test]
    public void EmptyImageCategoryWithoutGtAreaRangesAndMaxDets()
    {
        // Every IoU is 1 or 0, so all thresholds agree.
        // cat, area all: c1 TP, c2 FP (duplicate), a1 TP; npig 2 -> rc .5,.5,1, pr 1,.5,2/3 -> interpolated
        //   1 for recall <= .5 (51 of the 101 points, 0.00..0.50) and 2/3 above (50 points):
        //   AP_cat = (51 + 50*2/3)/101 = 253/303.
        // dog: b2 FP then b1 TP; rc 0,1, pr 0,.5 -> interpolated .5 everywhere: AP_dog = 0.5.
        // bird: no GT -> -1, left out of the mean. AP = AP50 = AP75 = (253/303 + 0.5)/2.
        // small: cat A is the only non-ignored GT; c1 matches the out-of-range C -> ignored, c2 is an
        //   unmatched large detection -> ignored; a1 TP -> AP 1. dog has no small GT -> -1. APs = 1.
        // medium: only dog B; b2 (area 25, unmatched) is ignored, b1 TP -> 1. APm = 1.
        // large: only cat C; c1 TP, c2 FP, a1 matches the ignored A -> ignored; recall 1 at precision 1. APl = 1.
        // AR@1: cat keeps a1 and c1 -> recall 1; dog keeps b2 -> 0. AR1 = 0.5. AR@10 = AR@100 = 1,
        // ARs = ARm = ARl = 1.
        var (gt, dt) = ThreeImages();
        var s = new CocoEvaluator(gt, dt, CocoIouType.Bbox).Run();
        double ap = (253.0 / 303 + 0.5) / 2;
        double[] expected = [ap, ap, ap, 1, 1, 1, 0.5, 1, 1, 1, 1, 1];
        Assert.That(s.Stats, Is.EqualTo(expected).Within(1e-12));
        Assert.That(s.PerCategory.Select(c => c.Ap), Is.EqualTo(new[] { 253.0 / 303, 0.5, -1 }).Within(1e-12));
        Assert.That(s.PerCategory.Select(c => c.Ar), Is.EqualTo(new[] { 1.0, 1.0, -1 }).Within(1e-12));
    }

    [Test]
    public void CustomMaxDetsWithout100LeavesStatZeroUndefined()
    {
        // pycocotools hard-codes maxDets=100 for stats[0]; with maxDets [1, 2, 50] it is -1, while the
        // other stats use maxDets[0..2]. From the case above: AR@1 = 0.5; AR@2: dog keeps b2 and b1 -> 1,
        // cat 1 -> AR@2 = 1; stats[1] (AP50 at maxDets[2] = 50) = the unrestricted AP.
        var (gt, dt) = ThreeImages();
        var p = new CocoEvalParams { MaxDetections = [50, 1, 2] };
        var s = new CocoEvaluator(gt, dt, CocoIouType.Bbox, p).Run();
        Assert.That(s.Stats[0], Is.EqualTo(-1));
        Assert.That(s.Stats[1], Is.EqualTo((253.0 / 303 + 0.5) / 2).Within(1e-12));
        Assert.That(s.Stats[6], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(s.Stats[7], Is.EqualTo(1).Within(1e-12));
        Assert.That(s.Lines[7], Does.Contain("maxDets=  2"));
        Assert.That(s.StatNames.Skip(6).Take(3), Is.EqualTo(new[] { "AR@1", "AR@2", "AR@50" }), "named after the maxDets they use (sorted)");
        // Per category at the largest maxDets (50), as mmdet and detectron2 take precision[..., -1]: the unrestricted
        // per-category APs of the case above, where a fixed 100 would leave every one undefined.
        Assert.That(s.PerCategoryMaxDets, Is.EqualTo(50));
        Assert.That(s.PerCategory.Select(c => c.Ap), Is.EqualTo(new[] { 253.0 / 303, 0.5, -1 }).Within(1e-12));
    }

    [Test]
    public void ClassAgnosticEvaluationIgnoresCategories()
    {
        // Same data as above with useCats = 0: every image's detections compete for all its GT.
        // Image 1: GT A (cat) and B (dog); detections b2 0.95 (miss), a1 0.5 = A, b1 0.3 = B.
        // Image 2: GT C; detections bird 0.99 [10,10,10,10] (IoU with C = 100/10000 -> miss), c1 0.9 = C,
        // c2 0.8 duplicate. Across images by score: bird FP, b2 FP, c1 TP, c2 FP, a1 TP, b1 TP; npig = 3.
        // tp 0,0,1,1,2,3; fp 1,2,2,3,3,3 -> rc 0,0,1/3,1/3,2/3,1; pr 0,0,1/3,1/4,2/5,1/2; interpolated
        // from the right: 1/2 everywhere -> AP = 0.5 at every threshold. AR@1: image 1 keeps b2 (miss),
        // image 2 keeps bird (miss) -> 0. AR@10 = 1.
        var (gt, dt) = ThreeImages();
        var s = new CocoEvaluator(gt, dt, CocoIouType.Bbox, new CocoEvalParams { UseCategories = false }).Run();
        Assert.That(s.Stats[0], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(s.Stats[6], Is.EqualTo(0).Within(1e-12));
        Assert.That(s.Stats[7], Is.EqualTo(1).Within(1e-12));
        Assert.That(s.PerCategory.Single().CategoryId, Is.EqualTo(-1));
    }

    [TestCase(0, 1.0, 1.0, 1.0)]
    [TestCase(29, 1.0 / 30, 0.0, 1.0)]
    public void TiedScoresKeepFileOrderAcrossManyDetections(int truePositiveIndex, double expectedAp, double expectedAr1, double expectedAr100)
    {
        // 30 detections of one image share score 0.5; only the one at file position truePositiveIndex
        // overlaps the GT. A stable sort keeps file order, so the true positive ranks truePositiveIndex+1.
        // First: precision 1 at recall 1 -> AP 1, AR@1 1. Last: 29 FPs precede it, the interpolated
        // precision is 1/30 everywhere -> AP 1/30; AR@1 = 0 (the top detection is a FP), AR@100 = 1.
        var gt = new CocoDataset([new CocoImage(7, 300, 300, null)], [Gt(1, 7, 1, [0, 0, 10, 10], 100)], [new CocoCategory(1, "x", null)]);
        var dt = new List<CocoDetection>();
        for (int i = 0; i < 30; i++) dt.Add(Dt(7, 1, 0.5, i == truePositiveIndex ? [0, 0, 10, 10] : [100 + 5 * i, 200, 4, 4]));
        var s = new CocoEvaluator(gt, dt, CocoIouType.Bbox).Run();
        Assert.That(s.Stats[0], Is.EqualTo(expectedAp).Within(1e-12));
        Assert.That(s.Stats[6], Is.EqualTo(expectedAr1).Within(1e-12));
        Assert.That(s.Stats[8], Is.EqualTo(expectedAr100).Within(1e-12));
    }

    [Test]
    public void DefaultThresholdsAreNumpyLinspaceValues()
    {
        var p = new CocoEvalParams();
        Assert.That(p.IouThresholds, Has.Length.EqualTo(10));
        Assert.That(p.IouThresholds[0], Is.EqualTo(0.5));
        Assert.That(p.IouThresholds[8], Is.EqualTo(0.8999999999999999)); // as numpy.linspace(.5, .95, 10) gives
        Assert.That(p.IouThresholds[9], Is.EqualTo(0.95));
        Assert.That(p.RecallThresholds, Has.Length.EqualTo(101));
        Assert.That(p.RecallThresholds[50], Is.EqualTo(0.5));
    }

    [Test]
    public void SummaryLinesUsePycocotoolsWording()
    {
        var (gt, dt) = ThreeImages();
        var s = new CocoEvaluator(gt, dt, CocoIouType.Bbox).Run();
        Assert.That(s.Lines[0], Is.EqualTo(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.667"));
        Assert.That(s.Lines[1], Is.EqualTo(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.667"));
        Assert.That(s.Lines[6], Is.EqualTo(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.500"));
        Assert.That(s.Lines[9], Is.EqualTo(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 1.000"));
    }

    [TestCase(0.0625, 3, "0.062")]   // exact binary tie: Python rounds to even
    [TestCase(0.0635, 3, "0.064")]   // stored as 0.063500000000000000611 -> above the tie
    [TestCase(0.0005, 3, "0.001")]   // stored slightly above 0.0005
    [TestCase(-1.0, 3, "-1.000")]
    [TestCase(0.8999999999999999, 2, "0.90")]
    [TestCase(0.125, 2, "0.12")]
    public void NumbersAreFormattedLikePython(double value, int decimals, string expected)
    {
        Assert.That(CocoSummary.PythonFixed(value, decimals), Is.EqualTo(expected));
    }

    [Test]
    public void DetectionOnAnUnknownImageIsAClearError()
    {
        var (gt, dt) = ThreeImages();
        dt.Add(Dt(99, 1, 0.5, [0, 0, 1, 1]));
        var e = Assert.Throws<Vim.Core.VimException>(() => new CocoEvaluator(gt, dt, CocoIouType.Bbox));
        Assert.That(e!.Message, Does.Contain("image_id 99"));
    }
}
