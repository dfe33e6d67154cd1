using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// Test-time augmentation of the detector (model.det_test, `vim test --tta`): the defaults are today's path bit for bit,
/// each pass's boxes map back to the original image by hand-computed rules, and the merge is class-wise NMS with a cap.
/// </summary>
public class DetectionTestTimeAugmentationTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-dettta-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private void GenerateCoco() => DemoDatasetGenerator.Generate(new DemoOptions
    {
        Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3,
    });

    private static float[] Values(Tensor t) => t.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();

    private static float[] BoxValues(Boxes boxes) => Values(boxes.Tensor);

    /// <summary>
    /// With model.det_test at its defaults, the validation detections (COCO results) are exactly those of the detector's
    /// own predict path, CascadeMaskRcnn.Predict on each evaluation batch as evaluation ran it before test-time
    /// augmentation existed: same boxes, scores and categories, to the last bit.
    /// </summary>
    [Test]
    public void DefaultsGiveTheDetectorsPlainDetectionsBitForBit()
    {
        GenerateCoco();
        var config = DetectionTaskTests.ConfigAt(_root);
        Assert.That(DetectionTestTimeAugmentation.IsPlain(config.Model.DetTest), Is.True);
        using var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector);
        var detections = task.PredictValidation();

        task.Detector.eval();
        var expected = new List<(long Image, long Category, double Score, double[] Box)>();
        foreach (var batch in task.Data.EvaluationLoader(task.ValSet).Epoch(0))
        {
            using var scope = NewDisposeScope();
            using var owned = batch;
            var meta = batch.Metas[0];
            var found = task.Detector.Predict(batch.Images, [(meta.ContentHeight, meta.ContentWidth)], [(meta.OriginalHeight, meta.OriginalWidth)])[0];
            var boxes = found.Boxes.Tensor.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            var scores = found.Scores!.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            var classes = found.Classes!.contiguous().data<long>().ToArray();
            for (int i = 0; i < classes.Length; i++)
                expected.Add((meta.ImageId, task.Data.Categories.ToCategoryId((int)classes[i]), scores[i],
                    [boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2] - boxes[4 * i], boxes[4 * i + 3] - boxes[4 * i + 1]]));
        }
        Assert.That(expected, Is.Not.Empty, "the untrained head scores above 0.05: there is something to compare");
        Assert.That(detections.Select(d => (d.ImageId, d.CategoryId, d.Score)), Is.EqualTo(expected.Select(e => (e.Image, e.Category, e.Score))));
        for (int i = 0; i < expected.Count; i++)
            Assert.That(detections[i].Bbox, Is.EqualTo(expected[i].Box), $"detection {i}");
    }

    /// <summary>
    /// Flip: on a horizontally symmetric image (its right half the mirror of its left), the flipped pass's boxes mapped
    /// back must be the hand mirror (W − x2, y1, W − x1, y2) of what the plain detector predicts on the mirrored image,
    /// with the same scores and classes; the unflipped pass's boxes are the plain detections themselves.
    /// </summary>
    [Test]
    public void FlippedPassBoxesAreTheMirrorOfTheDetectionsOnTheMirroredImage()
    {
        using var scope = NewDisposeScope();
        using var model = DetectionTaskTests.TinyDetector();
        model.eval();
        const long height = 48, width = 64;
        var half = randn(new long[] { 1, 3, height, width / 2 }, generator: new TorchSharp.torch.Generator(11));
        var image = cat(new[] { half, half.flip(3) }, 3);
        var mirrored = image.flip(3);
        Assert.That(mirrored.eq(image).all().item<bool>(), Is.True, "the image is its own mirror");

        var passes = DetectionTestTimeAugmentation.Passes(model, [new DetectionView(image, height, width)], height, width,
            new DetectionTestConfig { Flip = true });
        Assert.That(passes.Select(p => p.Flipped), Is.EqualTo(new[] { false, true }));

        var plain = model.Predict(image, [(height, width)])[0];
        var onMirror = model.Predict(mirrored, [(height, width)])[0];
        Assert.That(onMirror.Count, Is.GreaterThan(0), "an untrained detector scores some boxes above 0.05");
        var raw = BoxValues(onMirror.Boxes);
        var handMirror = new float[raw.Length];
        for (int i = 0; i < raw.Length; i += 4)
            (handMirror[i], handMirror[i + 1], handMirror[i + 2], handMirror[i + 3]) = (width - raw[i + 2], raw[i + 1], width - raw[i], raw[i + 3]);
        var flipped = passes[1].Detections;
        Assert.That(BoxValues(flipped.Boxes), Is.EqualTo(handMirror).Within(1e-4));
        Assert.That(Values(flipped.Scores!), Is.EqualTo(Values(onMirror.Scores!)).Within(1e-6));
        Assert.That(flipped.Classes!.data<long>().ToArray(), Is.EqualTo(onMirror.Classes!.data<long>().ToArray()));
        Assert.That(BoxValues(passes[0].Detections.Boxes), Is.EqualTo(BoxValues(plain.Boxes)).Within(1e-4));
    }

    /// <summary>Hand-computed mappings from a view to the original image and back, flipped or not.</summary>
    [Test]
    public void BoxesOfAScaledViewMapBackByTheInverseScale()
    {
        using var scope = NewDisposeScope();
        var box = new Boxes(tensor(new float[,] { { 4, 6, 20, 30 } }));
        // A 32×32 view of a 64×64 image (scale 0.5): ×2 on both axes.
        Assert.That(BoxValues(DetectionTestTimeAugmentation.ToOriginal(box, false, 32, 32, 64, 64)), Is.EqualTo(new float[] { 8, 12, 40, 60 }));
        // Flipped within the view's width first: (32 − 20, 6, 32 − 4, 30) = (12, 6, 28, 30), then ×2.
        Assert.That(BoxValues(DetectionTestTimeAugmentation.ToOriginal(box, true, 32, 32, 64, 64)), Is.EqualTo(new float[] { 24, 12, 56, 60 }));
        // Per axis: a 40×25 view (h × w) of an 80×100 image: x × 4, y × 2.
        Assert.That(BoxValues(DetectionTestTimeAugmentation.ToOriginal(box, false, 40, 25, 80, 100)), Is.EqualTo(new float[] { 16, 12, 80, 60 }));
        foreach (bool flip in new[] { false, true })
        {
            var there = DetectionTestTimeAugmentation.ToOriginal(box, flip, 40, 25, 80, 100);
            Assert.That(BoxValues(DetectionTestTimeAugmentation.FromOriginal(there, flip, 40, 25, 80, 100)), Is.EqualTo(BoxValues(box)).Within(1e-5), $"round trip, flip {flip}");
        }

        // The detector's own boxes on a 32×32 view declared to come from a 64×64 image: twice the plain detections.
        using var model = DetectionTaskTests.TinyDetector();
        model.eval();
        var view = randn(new long[] { 1, 3, 32, 32 }, generator: new TorchSharp.torch.Generator(5));
        var passes = DetectionTestTimeAugmentation.Passes(model, [new DetectionView(view, 32, 32)], 64, 64, new DetectionTestConfig { Scales = [0.5] });
        var plain = model.Predict(view, [(32, 32)])[0];
        Assert.That(plain.Count, Is.GreaterThan(0));
        Assert.That(BoxValues(passes.Single().Detections.Boxes), Is.EqualTo(BoxValues(plain.Boxes).Select(v => 2 * v).ToArray()).Within(1e-4));

        // The test resize of each ratio of data.crop_size 64, applied to a 100×60 (w × h) image: long side into 32 and 96.
        var pipelines = DetectionTestTimeAugmentation.TestPipelines(64, new DetectionTestConfig { Scales = [0.5, 1.5] });
        var sizes = pipelines.Select(pipeline =>
        {
            var sample = new DataSample(0, "synthetic", new byte[60 * 100 * 3], 60, 100);
            pipeline.Apply(sample, new Random(0));
            return (sample.ContentHeight, sample.ContentWidth);
        });
        // 32 / 100 = 0.32: 60 × 0.32 = 19.2 → 19; 96 / 100 = 0.96: 60 × 0.96 = 57.6 → 58.
        Assert.That(sizes, Is.EqualTo(new[] { (19, 32), (58, 96) }));
    }

    /// <summary>
    /// The merge, by hand: pass A finds (10, 10, 50, 50) of class 0 at 0.9 and (60, 60, 90, 90) of class 2 at 0.3; pass B
    /// finds (12, 11, 51, 49) of class 0 at 0.8 (IoU with A's 1444 / 1638 = 0.88) and (10, 10, 50, 50) of class 1 at 0.7.
    /// At nms_iou 0.5 B's class-0 box is suppressed, the class-1 box is not (another class): rows 0, 3, 1 by score. At 0.9
    /// both class-0 boxes stay. max_per_img 2 keeps the best two.
    /// </summary>
    [Test]
    public void MergeSuppressesOverlapsOfOneClassOnlyAndKeepsTheBest()
    {
        using var scope = NewDisposeScope();
        var a = Pass(new float[,] { { 10, 10, 50, 50 }, { 60, 60, 90, 90 } }, [0, 2], [0.9f, 0.3f]);
        var b = Pass(new float[,] { { 12, 11, 51, 49 }, { 10, 10, 50, 50 } }, [0, 1], [0.8f, 0.7f]);

        var (merged, source) = DetectionTestTimeAugmentation.Merge([a, b], 100, 100, numClasses: 3, nmsIou: 0.5, maxPerImage: 100);
        Assert.That(source.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 3, 1 }));
        Assert.That(merged.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 2 }));
        Assert.That(Values(merged.Scores!), Is.EqualTo(new[] { 0.9f, 0.7f, 0.3f }));
        Assert.That(BoxValues(merged.Boxes), Is.EqualTo(new float[] { 10, 10, 50, 50, 10, 10, 50, 50, 60, 60, 90, 90 }));

        var (loose, looseSource) = DetectionTestTimeAugmentation.Merge([a, b], 100, 100, numClasses: 3, nmsIou: 0.9, maxPerImage: 100);
        Assert.That(looseSource.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2, 3, 1 }));
        Assert.That(loose.Count, Is.EqualTo(4));

        var (capped, cappedSource) = DetectionTestTimeAugmentation.Merge([a, b], 100, 100, numClasses: 3, nmsIou: 0.5, maxPerImage: 2);
        Assert.That(cappedSource.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 3 }));
        Assert.That(capped.Count, Is.EqualTo(2));
    }

    private static Instances Pass(float[,] boxes, long[] classes, float[] scores) =>
        new(100, 100, new Boxes(tensor(boxes)), tensor(classes), tensor(scores));

    /// <summary>
    /// Soft-NMS in the merge, by hand. Pass A finds A = (0, 0, 10, 10) of class 0 at 0.9; pass B finds B = (0, 0, 10, 6) of
    /// class 0 at 0.8, C = (5, 0, 15, 10) of class 0 at 0.7 and D = (0, 0, 10, 10) of class 1 at 0.6 (rows 0; 1, 2, 3).
    /// IoU(A, B) = 60 / 100 = 0.6, IoU(A, C) = 50 / 150 = 1/3, IoU(B, C) = 30 / 130 = 3/13; D is of another class.
    /// Hard NMS at 0.5 drops B (0.6 > 0.5): rows 0, 2, 3. Linear Soft-NMS at 0.5 picks A and decays B to 0.8 · (1 − 0.6) =
    /// 0.32, leaves C (1/3 below the threshold), picks C, leaves B (3/13): A 0.9, C 0.7, D 0.6, B 0.32. Gaussian (σ 0.5)
    /// decays every overlap: C to 0.7 · exp(−(1/9) / 0.5) = 0.56052, B to 0.8 · exp(−0.36 / 0.5) = 0.38940; picks C, then
    /// B to 0.38940 · exp(−(3/13)² / 0.5) = 0.35006: A 0.9, D 0.6 (now above C), C 0.56052, B 0.35006. max_per_img 3 then
    /// cuts B, the lowest after rescoring.
    /// </summary>
    [Test]
    public void SoftNmsMergeRescoresOverlapsOfOneClassByHand()
    {
        using var scope = NewDisposeScope();
        var a = Pass(new float[,] { { 0, 0, 10, 10 } }, [0], [0.9f]);
        var b = Pass(new float[,] { { 0, 0, 10, 6 }, { 5, 0, 15, 10 }, { 0, 0, 10, 10 } }, [0, 0, 1], [0.8f, 0.7f, 0.6f]);
        (long[] Rows, long[] Classes, float[] Scores) Merged(int maxPerImage, SoftNmsSettings? soft)
        {
            var (merged, source) = DetectionTestTimeAugmentation.Merge([a, b], 100, 100, numClasses: 2, nmsIou: 0.5, maxPerImage, soft);
            var rows = source.data<long>().ToArray();
            // The boxes travel with their rows: each merged box is its source row's.
            var all = BoxValues(a.Boxes).Concat(BoxValues(b.Boxes)).ToArray();
            Assert.That(BoxValues(merged.Boxes), Is.EqualTo(rows.SelectMany(r => all.Skip(4 * (int)r).Take(4)).ToArray()));
            return (rows, merged.Classes!.data<long>().ToArray(), Values(merged.Scores!));
        }

        var hard = Merged(100, null);
        Assert.That(hard.Rows, Is.EqualTo(new long[] { 0, 2, 3 }));

        var linear = Merged(100, new SoftNmsSettings(SoftNmsMethod.Linear, 0.5, 1e-3));
        Assert.That(linear.Rows, Is.EqualTo(new long[] { 0, 2, 3, 1 }));
        Assert.That(linear.Classes, Is.EqualTo(new long[] { 0, 0, 1, 0 }));
        Assert.That(linear.Scores, Is.EqualTo(new[] { 0.9, 0.7, 0.6, 0.8 * (1 - 0.6) }).Within(1e-6));

        double c = 0.7 * Math.Exp(-(1.0 / 9) / 0.5), bAfterA = 0.8 * Math.Exp(-0.36 / 0.5), bAfterC = bAfterA * Math.Exp(-(3.0 / 13) * (3.0 / 13) / 0.5);
        Assert.That(new[] { c, bAfterA, bAfterC }, Is.EqualTo(new[] { 0.56052, 0.38940, 0.35006 }).Within(1e-5), "the hand values above");
        var gaussian = Merged(100, new SoftNmsSettings(SoftNmsMethod.Gaussian, 0.5, 1e-3));
        Assert.That(gaussian.Rows, Is.EqualTo(new long[] { 0, 3, 2, 1 }));
        Assert.That(gaussian.Classes, Is.EqualTo(new long[] { 0, 1, 0, 0 }));
        Assert.That(gaussian.Scores, Is.EqualTo(new[] { 0.9, 0.6, c, bAfterC }).Within(1e-6));

        var capped = Merged(3, new SoftNmsSettings(SoftNmsMethod.Gaussian, 0.5, 1e-3));
        Assert.That(capped.Rows, Is.EqualTo(new long[] { 0, 3, 2 }));
        // A minimum score above B's decayed 0.35 drops it in the merge itself.
        Assert.That(Merged(100, new SoftNmsSettings(SoftNmsMethod.Gaussian, 0.5, 0.4)).Rows, Is.EqualTo(new long[] { 0, 3, 2 }));
    }

    /// <summary>
    /// Soft-NMS that can only drop is hard NMS: three passes of random boxes (on a half-pixel grid, so mmcv-style category
    /// offsets round nothing) of four classes. Gaussian Soft-NMS with σ → 0 multiplies every overlapping box's score by
    /// exp(−IoU² / σ) = 0, below the minimum score, and leaves every other untouched: hard NMS at nms_iou 0. Linear Soft-NMS
    /// at 0.5 with minimum score 0.5 and every score in [0.5, 1) drops each box it decays (s · (1 − IoU) &lt; 0.5 once IoU ≥
    /// 0.5) and keeps the rest at their scores: hard NMS at 0.5 wherever no pair sits exactly on the threshold (checked).
    /// Both merges must equal the hard merge bit for bit: boxes, classes, scores and source rows, max_per_img included.
    /// </summary>
    [Test]
    public void SoftNmsThatCanOnlyDropMergesAsHardNmsBitForBit()
    {
        using var scope = NewDisposeScope();
        var rng = new Random(17);
        var passes = new List<Instances>();
        var all = new List<(float[] Box, long Class)>();
        for (int p = 0; p < 3; p++)
        {
            const int n = 40;
            var boxes = new float[n, 4];
            var classes = new long[n];
            var scores = new float[n];
            for (int i = 0; i < n; i++)
            {
                float x = rng.Next(0, 160) / 2f, y = rng.Next(0, 160) / 2f, w = rng.Next(4, 60) / 2f, h = rng.Next(4, 60) / 2f;
                classes[i] = rng.Next(4);
                if (all.Count > 0 && rng.NextDouble() < 0.4)
                {
                    // Another pass's view of an object found before: its box moved by up to 2 px per side, same class.
                    var (seen, seenClass) = all[rng.Next(all.Count)];
                    (x, y, w, h) = (seen[0] + rng.Next(-4, 5) / 2f, seen[1] + rng.Next(-4, 5) / 2f, seen[2] - seen[0] + rng.Next(-4, 5) / 2f, seen[3] - seen[1] + rng.Next(-4, 5) / 2f);
                    (x, y, w, h) = (Math.Max(x, 0), Math.Max(y, 0), Math.Max(w, 2), Math.Max(h, 2));
                    classes[i] = seenClass;
                }
                (boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]) = (x, y, Math.Min(x + w, 100), Math.Min(y + h, 100));
                scores[i] = 0.5f + 0.49f * (float)rng.NextDouble();
                all.Add(([boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]], classes[i]));
            }
            passes.Add(Pass(boxes, classes, scores));
        }
        static double Iou(float[] p, float[] q)
        {
            double iw = Math.Max(0, Math.Min(p[2], q[2]) - Math.Max(p[0], q[0])), ih = Math.Max(0, Math.Min(p[3], q[3]) - Math.Max(p[1], q[1]));
            double inter = iw * ih;
            return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter);
        }
        var sameClassIous = all.SelectMany((p, i) => all.Skip(i + 1).Where(q => q.Class == p.Class).Select(q => Iou(p.Box, q.Box))).ToList();
        Assert.That(sameClassIous.Count(v => Math.Abs(v - 0.5) < 1e-4), Is.Zero, "no pair on the linear threshold");
        Assert.That(sameClassIous.Count(v => v > 0.5), Is.GreaterThan(5), "hard NMS at 0.5 has boxes to drop");

        (float[] Boxes, long[] Classes, float[] Scores, long[] Rows) Merged(double nmsIou, int maxPerImage, SoftNmsSettings? soft)
        {
            var (merged, source) = DetectionTestTimeAugmentation.Merge(passes, 100, 100, numClasses: 4, nmsIou, maxPerImage, soft);
            return (BoxValues(merged.Boxes), merged.Classes!.data<long>().ToArray(), Values(merged.Scores!), source.data<long>().ToArray());
        }
        foreach (var (nmsIou, soft) in new (double, SoftNmsSettings)[]
        {
            (0, new SoftNmsSettings(SoftNmsMethod.Gaussian, 1e-30, 1e-3)),
            (0.5, new SoftNmsSettings(SoftNmsMethod.Linear, 0.5, 0.5)),
        })
        {
            foreach (int maxPerImage in new[] { 100, 7 })
            {
                var hard = Merged(nmsIou, maxPerImage, null);
                var softMerged = Merged(nmsIou, maxPerImage, soft);
                string what = $"{soft.Method} at nms_iou {nmsIou}, max_per_img {maxPerImage}";
                Assert.That(hard.Rows.Length, Is.InRange(2, Math.Min(maxPerImage, all.Count - 1)), $"{what}: something dropped, something kept");
                Assert.That(softMerged.Rows, Is.EqualTo(hard.Rows), what);
                Assert.That(softMerged.Classes, Is.EqualTo(hard.Classes), what);
                Assert.That(softMerged.Boxes, Is.EqualTo(hard.Boxes), what);
                Assert.That(softMerged.Scores, Is.EqualTo(hard.Scores), what);
            }
        }
    }

    /// <summary>
    /// With model.det_test.nms_type soft_nms, the flip passes of the tiny detector are merged by Soft-NMS: the output's
    /// boxes, classes and scores are <see cref="DetectionTestTimeAugmentation.Merge"/>'s with the config's Soft-NMS (decayed
    /// scores, not the passes'), it keeps boxes hard NMS drops, and each box's mask is the mean of both views' mask
    /// probabilities at exactly those merged boxes, recomputed here from the detector's heads.
    /// </summary>
    [Test]
    public void SoftNmsMergeScoresAreTheOutputsAndTheMasksFollowTheMergedBoxes()
    {
        using var scope = NewDisposeScope();
        using var model = DetectionTaskTests.TinyDetector();
        model.eval();
        const long height = 64, width = 64;
        var image = randn(new long[] { 1, 3, height, width }, generator: new TorchSharp.torch.Generator(21));
        // No cap within reach (each pass gives at most the head's 100): the counts compare the NMS alone.
        var test = new DetectionTestConfig { Flip = true, NmsType = DetectionNmsType.SoftNms, SoftNmsMethod = SoftNmsMethod.Gaussian, MaxPerImg = 1000 };
        var view = new DetectionView(image, height, width);
        var found = DetectionTestTimeAugmentation.Predict(model, [view], height, width, test);

        using var noGrad = no_grad();
        var passes = DetectionTestTimeAugmentation.Passes(model, [view], height, width, test);
        var detections = passes.Select(p => p.Detections).ToList();
        long classes = model.RoiHeads.Settings.NumClasses;
        var soft = DetectionTestTimeAugmentation.MergeSoftNms(test);
        Assert.That(soft, Is.EqualTo(new SoftNmsSettings(SoftNmsMethod.Gaussian, 0.5, 1e-3)));
        var (merged, _) = DetectionTestTimeAugmentation.Merge(detections, height, width, classes, test.NmsIou, test.MaxPerImg, soft);
        var (hard, _) = DetectionTestTimeAugmentation.Merge(detections, height, width, classes, test.NmsIou, test.MaxPerImg);
        Assert.That(found.Count, Is.EqualTo(merged.Count));
        Assert.That(found.Count, Is.GreaterThan(hard.Count), "Soft-NMS keeps boxes hard NMS drops");
        Assert.That(BoxValues(found.Boxes), Is.EqualTo(BoxValues(merged.Boxes)));
        Assert.That(found.Classes!.data<long>().ToArray(), Is.EqualTo(merged.Classes!.data<long>().ToArray()));
        Assert.That(Values(found.Scores!), Is.EqualTo(Values(merged.Scores!)));
        var passScores = detections.SelectMany(d => Values(d.Scores!)).ToHashSet();
        Assert.That(Values(found.Scores!).Count(s => !passScores.Contains(s)), Is.GreaterThan(0), "some scores are decayed ones");

        AssertMasksAreTheFlipAverage(model, found, passes[0].RoiFeatures, passes[1].RoiFeatures);
    }

    /// <summary>
    /// <paramref name="found"/>'s masks (a 1-scale flip prediction at its original size) are the mean of the mask head's
    /// probabilities at its boxes in the plain view and at their mirror in the mirrored view (mirrored back), pasted once.
    /// </summary>
    private static void AssertMasksAreTheFlipAverage(CascadeMaskRcnn model, Instances found, List<Tensor> plainFeatures, List<Tensor> mirrorFeatures)
    {
        long height = found.ImageHeight, width = found.ImageWidth;
        var merged = new Instances(height, width, found.Boxes, found.Classes);
        var mirroredBoxes = new Instances(height, width, found.Boxes.FlipHorizontal(width), found.Classes);
        var mean = (model.MaskProbabilities(plainFeatures, merged) + model.MaskProbabilities(mirrorFeatures, mirroredBoxes).flip(2)) / 2;
        var expected = MaskPaster.Paste(mean, found.Boxes.Tensor, height, width, 0.5);
        Assert.That(found.Masks!.eq(expected).all().item<bool>(), Is.True, "every pixel of every pasted mask");
    }

    /// <summary>
    /// Masks: with flip, each merged box's mask is the mean of the mask head's probabilities at the box in the plain view
    /// and at its mirror in the mirrored view (mirrored back), pasted once: recomputed here from the detector's own heads.
    /// </summary>
    [Test]
    public void FlipAveragesTheMaskOfEachMergedBoxOverBothViews()
    {
        using var scope = NewDisposeScope();
        using var model = DetectionTaskTests.TinyDetector();
        model.eval();
        const long height = 64, width = 64;
        var image = randn(new long[] { 1, 3, height, width }, generator: new TorchSharp.torch.Generator(21));
        var test = new DetectionTestConfig { Flip = true };
        var found = DetectionTestTimeAugmentation.Predict(model, [new DetectionView(image, height, width)], height, width, test);
        Assert.That(found.Count, Is.GreaterThan(0));

        var (plainFeatures, _) = model.DetectBoxes(image, (height, width));
        var (mirrorFeatures, _) = model.DetectBoxes(image.flip(3), (height, width));
        AssertMasksAreTheFlipAverage(model, found, plainFeatures, mirrorFeatures);
    }

    /// <summary>
    /// `vim test --tta` is an override of the config's task's flip key after the --set ones: the config vim test loads
    /// has the flip on, also over an explicit --set …flip=false (the flag wins, as vim train's --load-from over --set
    /// load_from), the other task's section is left alone (a segmentation config refuses model.det_test), and without
    /// the flag --set decides.
    /// </summary>
    [TestCase("det/cascade_mask_rcnn_vim_tiny_demo_coco.yaml", "model.det_test.flip")]
    [TestCase("seg/upernet_vim_tiny_demo_ade.yaml", "model.seg_test.flip")]
    public void TtaIsAFlipOverrideThatWinsOverSet(string configName, string key)
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", configName);
        static bool Flip(ExperimentConfig config) => config.Task == TaskKind.Detection ? config.Model.DetTest.Flip : config.Model.SegTest.Flip;
        ExperimentConfig Used(bool tta, params string[] settings) => ExperimentConfig.Load(configPath, TestCommand.Overrides(configPath, settings, tta)).Config;

        Assert.That(Flip(Used(tta: false)), Is.False, "the config's own value");
        Assert.That(TestCommand.Overrides(configPath, ["data.num_workers=0"], tta: true), Is.EqualTo(new[] { "data.num_workers=0", $"{key}=true" }));
        Assert.That(Flip(Used(tta: true)), Is.True);
        Assert.That(Flip(Used(tta: true, $"{key}=false")), Is.True, "the flag wins over --set");
        Assert.That(Flip(Used(tta: false, $"{key}=true")), Is.True, "--set alone");
        Assert.That(Flip(Used(tta: false, $"{key}=false")), Is.False);
    }

    /// <summary>
    /// `vim test --tta` evaluates as usual (metrics.json, results.json) with the flip pass on: its results are those of
    /// --set model.det_test.flip=true byte for byte and not those of a plain run. Bad model.det_test values and the
    /// section in a segmentation config are refused naming the key.
    /// </summary>
    [Test]
    public void VimTestTtaWritesMetricsAndResultsWithTheFlipPass()
    {
        GenerateCoco();
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        string[] overrides = [$"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[64,64]", "data.num_workers=0", "model.backbone.pretrained=null",
            "model.backbone.img_size=64", "data.batch_size=2"];
        using var stopAtOnce = new CancellationTokenSource();
        stopAtOnce.Cancel();
        var checkpoint = TrainCommand.Train(ExperimentConfig.Load(configPath, overrides).Config, Path.Combine(_root, "work"), null,
            SingleProcessCommunicator.Instance, stopAtOnce.Token).LastCheckpoint!;

        string Test(string name, params string[] more)
        {
            var dir = Path.Combine(_root, name);
            var errors = new StringWriter();
            var console = Console.Out;
            Console.SetOut(TextWriter.Null);
            int exit;
            try
            {
                exit = VimCli.Run(["test", configPath, "--checkpoint", checkpoint, "--out", dir, "--overlays", "1",
                    .. overrides.Concat(more.Where(m => m.Contains('='))).SelectMany(o => new[] { "--set", o }), .. more.Where(m => !m.Contains('='))], errors);
            }
            finally
            {
                Console.SetOut(console);
            }
            Assert.That(exit, Is.EqualTo(0), errors.ToString());
            Assert.That(File.Exists(Path.Combine(dir, "metrics.json")), Is.True, name);
            return File.ReadAllText(Path.Combine(dir, "results.json"));
        }
        var tta = Test("tta", "--tta");
        Assert.That(tta, Is.EqualTo(Test("flip", "model.det_test.flip=true")));
        // The gaussian decays every overlap, so the kept 100 carry decayed scores (linear's decayed boxes, at most half their
        // score, would fall below the untrained head's 100 best and leave the same 100 as hard NMS).
        Assert.That(Test("tta-soft", "--tta", "model.det_test.nms_type=soft_nms", "model.det_test.soft_nms_method=gaussian"), Is.Not.EqualTo(tta),
            "Soft-NMS rescores the merge");
        Assert.That(tta, Is.Not.EqualTo(Test("plain")), "the flip pass changes the untrained detector's detections");
        Assert.That(Test("tta-over-set", "--tta", "model.det_test.flip=false"), Is.EqualTo(tta), "--tta wins over --set model.det_test.flip=false");

        foreach (var (setting, expected) in new[]
        {
            ("model.det_test.scales=[]", "model.det_test.scales must hold at least one ratio"),
            ("model.det_test.scales=[1.0,-0.5]", "model.det_test.scales must be positive"),
            ("model.det_test.nms_iou=1.5", "model.det_test.nms_iou must be within [0, 1], got 1.5"),
            ("model.det_test.max_per_img=0", "model.det_test.max_per_img must be at least 1, got 0"),
            ("model.det_test.soft_nms_sigma=0", "model.det_test.soft_nms_sigma must be a positive number (σ of Soft-NMS's gaussian decay exp(-IoU²/σ), e.g. 0.5), got 0"),
            ("model.det_test.soft_nms_min_score=1", "model.det_test.soft_nms_min_score must be within [0, 1) (the decayed score below which Soft-NMS drops a box, e.g. 0.001), got 1"),
        })
        {
            var config = ExperimentConfig.Load(configPath, overrides.Append(setting)).Config;
            var error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector).Dispose())!;
            Assert.That(error.Message, Does.Contain(expected), setting);
        }
        foreach (var (setting, expected) in new[]
        {
            ("model.det_test.nms_type=softnms", "'model.det_test.nms_type' must be one of nms, soft_nms, got 'softnms'"),
            ("model.det_test.soft_nms_method=gausian", "'model.det_test.soft_nms_method' must be one of linear, gaussian, got 'gausian'"),
        })
            Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(configPath, overrides.Append(setting)))!.Message, Does.Contain(expected), setting);
        var segmentation = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var refused = Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation, ["model.det_test.flip=true"]))!;
        Assert.That(refused.Message, Does.Contain("model.det_test is a detection setting"));
    }
}
