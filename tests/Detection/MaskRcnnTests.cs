using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// Mask R-CNN (and Faster R-CNN) as configurations of the cascade heads: one box stage at IoU 0.5 with class-specific box
/// regression (model.det_head.stage_iou_thresholds, stage_box_weights, cls_agnostic_bbox_reg), as detectron2's
/// StandardROIHeads and mmdet's reg_class_agnostic=False.
/// </summary>
public class MaskRcnnTests
{
    private static Boxes B(params float[] xyxy) => new(tensor(xyxy).view(-1, 4));

    /// <summary>The tiny heads of the cascade tests with ViTDet's Mask R-CNN box stage: one at IoU 0.5, (10, 10, 5, 5), class-specific.</summary>
    internal static CascadeRoiHeadsSettings OneStageClassSpecific(CascadeRoiHeadsSettings settings) => settings with
    {
        StageIouThresholds = [0.5], StageBoxWeights = [(10, 10, 5, 5)], ClassAgnosticBoxRegression = false,
    };

    private static float[] Values(Tensor t) => t.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();

    /// <summary>
    /// The rows of RoiLossTests' hand-computed loss, now with one set of deltas per class (K = 2): row 0 is class 0, row 2
    /// class 1, row 1 background. The deltas of the classes a row is not (and the background row's) hold 100, so reading any
    /// of them would show. Targets: row 0 (10·0.1, 10·0.3, 5·0, 5·ln 1.2), row 2 zero. L1: (|0.5 − 1| + 0 + 0.2 + 5 ln 1.2
    /// + 0.1) / 3 RoIs; smooth L1 at β = 1 takes 0.5·d² below 1. The L1 gradient is sign(d) / 3 at the right class's
    /// deltas and zero at every other.
    /// </summary>
    [Test]
    public void ClassSpecificBoxLossReadsOnlyEachRoisGroundTruthClassDeltas()
    {
        using var scope = NewDisposeScope();
        var classes = tensor(new long[] { 0, 2, 1 });
        var proposals = tensor(new[] { 0f, 0, 10, 10, 5, 5, 9, 9, 0, 0, 20, 20 }).view(3, 4);
        var gtBoxes = tensor(new[] { 1f, 2, 11, 14, 0, 0, 1, 1, 0, 0, 20, 20 }).view(3, 4);
        var deltas = tensor(new[]
        {
            0.5f, 3, 0.2f, 0, 100, 100, 100, 100,
            100, 100, 100, 100, 100, 100, 100, 100,
            100, 100, 100, 100, 0.1f, 0, 0, 0,
        }).view(3, 8).requires_grad_(true);
        var scores = zeros(3, 3);
        double[] differences = [0.5 - 1, 0, 0.2, -5 * Math.Log(1.2), 0.1, 0, 0, 0];

        var l1 = new FastRcnnOutputLayers(4, 2, new Box2BoxTransform(10, 10, 5, 5), classAgnostic: false);
        Assert.That(l1.state_dict()["bbox_pred.weight"].shape, Is.EqualTo(new long[] { 8, 4 }), "4 deltas per class");
        var (_, box) = l1.Losses(scores, deltas, proposals, classes, gtBoxes);
        Assert.That(box.ToDouble(), Is.EqualTo(differences.Sum(Math.Abs) / 3).Within(1e-5));
        box.backward();
        var expectedGradient = new float[24];
        for (int j = 0; j < 4; j++)
        {
            expectedGradient[j] = (float)Math.Sign(differences[j]) / 3;
            expectedGradient[16 + 4 + j] = (float)Math.Sign(differences[4 + j]) / 3;
        }
        Assert.That(Values(deltas.grad!), Is.EqualTo(expectedGradient).Within(1e-6));

        var smooth = new FastRcnnOutputLayers(4, 2, new Box2BoxTransform(10, 10, 5, 5), smoothL1Beta: 1.0, classAgnostic: false);
        var (_, smoothBox) = smooth.Losses(scores, deltas.detach(), proposals, classes, gtBoxes);
        double Huber(double d) => Math.Abs(d) < 1 ? 0.5 * d * d : Math.Abs(d) - 0.5;
        Assert.That(smoothBox.ToDouble(), Is.EqualTo(differences.Sum(Huber) / 3).Within(1e-5));
    }

    /// <summary>
    /// Hand-made: two proposals in a 40 × 20 (w × h) image, K = 2, weights (10, 10, 5, 5). Proposal 0 [0, 0, 10, 10]: class 0
    /// deltas 0 (itself), class 1 dx = 10 (one width right: [10, 0, 20, 10]). Proposal 1 [2, 0, 12, 10]: class 0 itself,
    /// class 1 dy = 10 and dh = 5 ln 2 (centre one height down, height doubled: [2, 5, 12, 25], clipped to [2, 5, 12, 20]).
    /// Probabilities (0.6, 0.3 | 0.1) and (0.5, 0.45 | 0.05). Every pair is above 0.05; per-class NMS at 0.5 drops proposal
    /// 1's class-0 box (IoU 80 / 120 with proposal 0's, lower score) and keeps both class-1 boxes (IoU 10 / 240): each kept
    /// pair with its own class's box. Linear Soft-NMS at 0.5 instead decays the dropped one to 0.5 · (1 − 2/3).
    /// </summary>
    [Test]
    public void ClassSpecificInferenceKeepsEachClassWithItsOwnBox()
    {
        using var scope = NewDisposeScope();
        var predictor = new FastRcnnOutputLayers(4, 2, new Box2BoxTransform(10, 10, 5, 5), classAgnostic: false);
        var proposals = tensor(new[] { 0f, 0, 10, 10, 2, 0, 12, 10 }).view(2, 4);
        var deltas = tensor(new[] { 0f, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 5 * MathF.Log(2) }).view(2, 8);
        var boxes = predictor.PredictBoxes(deltas, proposals);
        Assert.That(Values(boxes), Is.EqualTo(new[] { 0f, 0, 10, 10, 10, 0, 20, 10, 2, 0, 12, 10, 2, 5, 12, 25 }).Within(1e-4));
        var probabilities = tensor(new[] { 0.6f, 0.3f, 0.1f, 0.5f, 0.45f, 0.05f }).view(2, 3);

        var (hard, hardRoi) = FastRcnnInference.SingleImage(boxes, probabilities, 20, 40, 0.05, 0.5, 100);
        Assert.That(hard.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 1 }));
        Assert.That(hardRoi.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 0 }));
        Assert.That(Values(hard.Scores!), Is.EqualTo(new[] { 0.6f, 0.45f, 0.3f }));
        Assert.That(Values(hard.Boxes.Tensor), Is.EqualTo(new[] { 0f, 0, 10, 10, 2, 5, 12, 20, 10, 0, 20, 10 }).Within(1e-4));

        var (capped, _) = FastRcnnInference.SingleImage(boxes, probabilities, 20, 40, 0.05, 0.5, topK: 2);
        Assert.That(Values(capped.Scores!), Is.EqualTo(new[] { 0.6f, 0.45f }));

        var (soft, softRoi) = FastRcnnInference.SingleImage(boxes, probabilities, 20, 40, 0.05, 0.5, 100,
            new SoftNmsSettings(SoftNmsMethod.Linear, 0.5, 1e-3));
        Assert.That(softRoi.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 0, 1 }));
        Assert.That(soft.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 1, 0 }));
        Assert.That(Values(soft.Scores!), Is.EqualTo(new[] { 0.6f, 0.45f, 0.3f, 0.5f * (1 - 80f / 120) }).Within(1e-6));
        Assert.That(Values(soft.Boxes.Tensor[3]), Is.EqualTo(new[] { 2f, 0, 12, 10 }).Within(1e-4), "the decayed pair keeps its class's box");

        Assert.Throws<ArgumentException>(() => FastRcnnInference.SingleImage(zeros(2, 12), probabilities, 20, 40, 0.05, 0.5, 100),
            "boxes that are neither 4 nor 4K wide");
    }

    /// <summary>
    /// A one-stage class-specific head at inference: with no threshold, suppression or cap every (RoI, class) pair comes out,
    /// scored by the stage's own probability (the average over one stage) and boxed by its class's decoded deltas, clipped;
    /// the classes' boxes of a RoI differ. Linear Soft-NMS with no minimum score keeps the same pairs, the overlapping ones
    /// of a class (the first two proposals nearly coincide) decayed.
    /// </summary>
    [Test]
    public void OneStageInferenceScoresWithTheStageAndBoxesEachClassWithItsDeltas()
    {
        using var scope = NewDisposeScope();
        var settings = OneStageClassSpecific(RoiHeadModulesTests.TinySettings()) with
        {
            TestScoreThreshold = 0, TestNmsThreshold = 1.0, DetectionsPerImage = -1, MaskOn = false,
        };
        var (heads, features) = RoiCascadeTests.HeadsWithDistinctStages(settings);
        using var _ = heads;
        Assert.That(heads.NumStages, Is.EqualTo(1));
        var proposals = B(2, 2, 30, 40, 3, 3, 31, 41, 10, 5, 60, 60, 0, 30, 20, 63);
        var detections = heads.Forward(features, [new Instances(64, 64, proposals)]).Detections![0];

        var (scores, deltas) = heads.RunStage(features, [proposals], 0);
        Assert.That(deltas.shape, Is.EqualTo(new long[] { 4, 12 }));
        var probabilities = Values(FastRcnnOutputLayers.PredictProbabilities(scores));
        var decoded = Values(heads.Predictors[0].PredictBoxes(deltas, proposals.Tensor));
        var expected = new List<(float Score, long Class, float[] Box)>();
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 3; c++)
            {
                var box = decoded.Skip(12 * r + 4 * c).Take(4).ToArray();
                expected.Add((probabilities[4 * r + c], c, [Math.Clamp(box[0], 0, 64), Math.Clamp(box[1], 0, 64), Math.Clamp(box[2], 0, 64), Math.Clamp(box[3], 0, 64)]));
            }
        expected = expected.OrderByDescending(e => e.Score).ToList();
        Assert.That(detections.Count, Is.EqualTo(12));
        Assert.That(Values(detections.Scores!), Is.EqualTo(expected.Select(e => e.Score).ToArray()).Within(1e-6));
        Assert.That(detections.Classes!.data<long>().ToArray(), Is.EqualTo(expected.Select(e => e.Class).ToArray()));
        Assert.That(Values(detections.Boxes.Tensor), Is.EqualTo(expected.SelectMany(e => e.Box).ToArray()).Within(1e-4));
        Assert.That(decoded.Skip(0).Take(4), Is.Not.EqualTo(decoded.Skip(4).Take(4)), "a RoI's classes have boxes of their own");

        // Linear Soft-NMS with no minimum drops no pair: the same (class, box) pairs, each at a score no higher.
        using var softHeads = RoiCascadeTests.HeadsWithDistinctStages(settings with
        {
            TestNmsThreshold = 0.5, TestSoftNms = new SoftNmsSettings(SoftNmsMethod.Linear, 0.5, 0),
        }).Heads;
        var soft = softHeads.Forward(features, [new Instances(64, 64, proposals)]).Detections![0];
        Assert.That(soft.Count, Is.EqualTo(12));
        var softBoxes = Values(soft.Boxes.Tensor);
        var softScores = Values(soft.Scores!);
        var softClasses = soft.Classes!.data<long>().ToArray();
        int decayed = 0;
        for (int i = 0; i < 12; i++)
        {
            var match = expected.FindIndex(e => e.Class == softClasses[i] && e.Box.Zip(softBoxes.Skip(4 * i).Take(4)).All(p => Math.Abs(p.First - p.Second) < 1e-4));
            Assert.That(match, Is.GreaterThanOrEqualTo(0), $"soft detection {i} is a (RoI, class) pair with its class's box");
            Assert.That(softScores[i], Is.LessThanOrEqualTo(expected[match].Score + 1e-7));
            if (softScores[i] < expected[match].Score - 1e-6) decayed++;
        }
        Assert.That(decayed, Is.GreaterThan(0), "overlapping boxes of one class decayed");
    }

    /// <summary>
    /// Test-time augmentation of a class-specific Mask R-CNN on a horizontally symmetric image: the flipped pass's boxes
    /// are the hand mirror (W − x2, y1, W − x1, y2) of the plain detector's class boxes on the mirrored image, and every
    /// merged detection is one of the two passes' (class, box, score), with a mask.
    /// </summary>
    [Test]
    public void TestTimeFlipOfClassSpecificBoxesMirrorsAndMergesThePassesBoxes()
    {
        using var scope = NewDisposeScope();
        using var model = DetectionTaskTests.TinyDetector(OneStageClassSpecific);
        model.eval();
        const long height = 48, width = 64;
        var half = randn(new long[] { 1, 3, height, width / 2 }, generator: new Generator(11));
        var image = cat(new[] { half, half.flip(3) }, 3);
        var test = new DetectionTestConfig { Flip = true };
        var passes = DetectionTestTimeAugmentation.Passes(model, [new DetectionView(image, height, width)], height, width, test);
        var onMirror = model.Predict(image.flip(3), [(height, width)])[0];
        Assert.That(onMirror.Count, Is.GreaterThan(0), "an untrained detector scores some boxes above 0.05");
        var raw = Values(onMirror.Boxes.Tensor);
        var handMirror = new float[raw.Length];
        for (int i = 0; i < raw.Length; i += 4)
            (handMirror[i], handMirror[i + 1], handMirror[i + 2], handMirror[i + 3]) = (width - raw[i + 2], raw[i + 1], width - raw[i], raw[i + 3]);
        Assert.That(Values(passes[1].Detections.Boxes.Tensor), Is.EqualTo(handMirror).Within(1e-4));
        Assert.That(passes[1].Detections.Classes!.data<long>().ToArray(), Is.EqualTo(onMirror.Classes!.data<long>().ToArray()));

        var found = DetectionTestTimeAugmentation.Predict(model, [new DetectionView(image, height, width)], height, width, test);
        Assert.That(found.Count, Is.GreaterThan(0));
        Assert.That(found.Masks!.shape, Is.EqualTo(new[] { found.Count, height, width }));
        var candidates = passes.SelectMany(p => Enumerable.Range(0, (int)p.Detections.Count).Select(i =>
            (Class: p.Detections.Classes![i].ToInt64(), Score: p.Detections.Scores![i].ToSingle(), Box: Values(p.Detections.Boxes.Tensor[i])))).ToList();
        for (int i = 0; i < found.Count; i++)
        {
            long cls = found.Classes![i].ToInt64();
            float score = found.Scores![i].ToSingle();
            var box = Values(found.Boxes.Tensor[i]);
            Assert.That(candidates.Any(c => c.Class == cls && c.Score == score && c.Box.Zip(box).All(p => Math.Abs(p.First - p.Second) < 1e-4)), Is.True,
                $"merged detection {i} comes from a pass");
        }
    }

    /// <summary>
    /// mmdet's choice of refinement class (regress_by_class), by hand: logits (1, 2 | 5), (3, 0 | 0), (0, 4 | 1) with
    /// background last. At inference each row's best foreground class (1, 0, 1; never background, however high). In
    /// training a foreground row's ground-truth class wins (row 0: class 0) and the background row keeps its best (0).
    /// </summary>
    [Test]
    public void RefinementTakesTheGroundTruthClassOfForegroundAndTheBestForegroundClassElsewhere()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new[] { 1f, 2, 5, 3, 0, 0, 0, 4, 1 }).view(3, 3);
        Assert.That(CascadeRoiHeads.RefinementClasses(logits, null).data<long>().ToArray(), Is.EqualTo(new long[] { 1, 0, 1 }));
        Assert.That(CascadeRoiHeads.RefinementClasses(logits, tensor(new long[] { 0, 2, 1 })).data<long>().ToArray(), Is.EqualTo(new long[] { 0, 0, 1 }));
    }

    /// <summary>
    /// A two-stage cascade with class-specific regression (mmdet's CascadeRoIHead with reg_class_agnostic=False) at
    /// inference, redone by hand: stage 1 pools stage 0's boxes of each RoI's best foreground class, clipped; the scores are
    /// the stages' mean; the boxes stage 1's, one per class.
    /// </summary>
    [Test]
    public void ClassSpecificCascadeRefinesWithEachRoisBestClass()
    {
        using var scope = NewDisposeScope();
        var settings = RoiHeadModulesTests.TinySettings() with
        {
            StageIouThresholds = [0.5, 0.6], StageBoxWeights = [(10, 10, 5, 5), (20, 20, 10, 10)], ClassAgnosticBoxRegression = false,
            TestScoreThreshold = 0, TestNmsThreshold = 1.0, DetectionsPerImage = -1, MaskOn = false,
        };
        var (heads, features) = RoiCascadeTests.HeadsWithDistinctStages(settings);
        using var _ = heads;
        var proposals = B(2, 2, 30, 40, 10, 5, 60, 60, 0, 30, 20, 63);
        var detections = heads.Forward(features, [new Instances(64, 64, proposals)]).Detections![0];

        var (scores0, deltas0) = heads.RunStage(features, [proposals], 0);
        var best = scores0[.., ..3].argmax(1).data<long>().ToArray();
        var all0 = heads.Predictors[0].PredictBoxes(deltas0, proposals.Tensor);
        var refined = cat(best.Select((c, r) => all0[r, (int)(4 * c)..(int)(4 * c + 4)].unsqueeze(0)).ToArray(), 0);
        var stage1Boxes = new Boxes(refined).Clip(64, 64);
        var (scores1, deltas1) = heads.RunStage(features, [stage1Boxes], 1);
        var probabilities = Values((FastRcnnOutputLayers.PredictProbabilities(scores0) + FastRcnnOutputLayers.PredictProbabilities(scores1)) / 2);
        var decoded = Values(new Boxes(heads.Predictors[1].PredictBoxes(deltas1, stage1Boxes.Tensor).view(-1, 4)).Clip(64, 64).Tensor);
        var expected = Enumerable.Range(0, 9).Select(i => (Score: probabilities[4 * (i / 3) + i % 3], Box: decoded.Skip(4 * i).Take(4).ToArray()))
            .OrderByDescending(e => e.Score).ToList();
        Assert.That(Values(detections.Scores!), Is.EqualTo(expected.Select(e => e.Score).ToArray()).Within(1e-6));
        Assert.That(Values(detections.Boxes.Tensor), Is.EqualTo(expected.SelectMany(e => e.Box).ToArray()).Within(1e-4));
        // Not the refinement of any other class: some RoI's boxes of its other classes differ from its best class's.
        Assert.That((all0.view(3, 3, 4) - refined.unsqueeze(1)).abs().max().ToDouble(), Is.GreaterThan(1e-3));
    }

    /// <summary>
    /// A one-stage head trains under StandardROIHeads' loss names (loss_cls, loss_box_reg, loss_mask), and its pooled
    /// features pass their whole gradient back (the cascade's 1/stages is 1): the same as the modules called directly.
    /// </summary>
    [Test]
    public void OneStageHeadTrainsUnderStandardRoiHeadsNamesWithTheWholeGradient()
    {
        using var scope = NewDisposeScope();
        using var heads = new CascadeRoiHeads(8, OneStageClassSpecific(RoiHeadModulesTests.TinySettings()), seed: 3);
        var gen = new Generator(8);
        var features = new[] { 16L, 8, 4, 2 }.Select(s => randn(new[] { 1, 8, s, s }, generator: gen)).ToArray();
        var masks = zeros(new long[] { 1, 64, 64 }, ScalarType.Bool);
        masks[0, 10..40, 12..30] = tensor(true);
        var targets = new[] { new Instances(64, 64, B(10, 8, 34, 44), tensor(new long[] { 1 }), masks: masks) };
        var proposals = new[] { new Instances(64, 64, B(8, 8, 30, 40, 12, 10, 36, 46, 40, 40, 60, 60)) };
        heads.train();
        var losses = heads.Forward(features, proposals, targets, new Generator(1)).Losses;
        Assert.That(losses.Keys.Where(TrainingTerms.IsLoss), Is.EquivalentTo(new[] { "loss_cls", "loss_box_reg", "loss_mask" }));
        Assert.That(losses["loss_box_reg"].ToDouble(), Is.GreaterThan(0), "the appended ground truth and the IoU ≥ 0.5 proposals are foreground");

        var boxes = new[] { B(2, 2, 30, 40, 10, 5, 60, 60) };
        Tensor FeatureGrad(bool viaStage)
        {
            var leaves = features.Select(f => f.detach().clone().requires_grad_(true)).ToArray();
            var head = (FastRcnnConvFcHead)heads.named_children().First(c => c.name == "box_head").module.named_children().Single().module;
            var deltas = viaStage ? heads.RunStage(leaves, boxes, 0).Deltas : heads.Predictors[0].forward(head.forward(heads.BoxPooler.Forward(leaves, boxes))).Deltas;
            deltas.square().sum().backward();
            return cat(leaves.Select(l => (l.grad ?? zeros_like(l)).flatten()).ToArray(), 0);
        }
        var plain = FeatureGrad(viaStage: false);
        Assert.That(plain.abs().sum().ToDouble(), Is.GreaterThan(0));
        Assert.That(TensorBits.Same(FeatureGrad(viaStage: true), plain), Is.True, "unscaled, to the bit");
    }

    /// <summary>
    /// The shipped demo Mask R-CNN config with its registered Vim-Ti at 64² on 6 generated training images: steps on one
    /// batch lower its loss; two iterations through the trainer log StandardROIHeads' loss names (no stage suffix) and
    /// an evaluation with box and mask AP; DetectionTask evaluates the trained model end to end (masks encoded as RLE,
    /// the dataset's category ids). Faster R-CNN is the same config with mask_on false: no mask loss, box AP alone.
    /// </summary>
    [Test]
    public void TheDemoMaskRcnnConfigTrainsAndEvaluatesEndToEnd()
    {
        var root = Directory.CreateTempSubdirectory("vimdense-maskrcnn-").FullName;
        try
        {
            DemoDatasetGenerator.Generate(new DemoOptions
            {
                Kind = DemoKind.Coco, OutputDir = Path.Combine(root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3,
            });
            var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "mask_rcnn_vim_tiny_demo_coco.yaml");
            ExperimentConfig Load(params string[] more) => ExperimentConfig.Load(configPath,
            [
                $"data.root={Path.Combine(root, "coco")}", "data.crop_size=[64,64]", "model.backbone.img_size=64", "data.num_workers=0",
                "data.batch_size=2", "schedule.max_iters=2", "schedule.warmup_iters=0", "schedule.milestones=[1]", "train.eval_interval=2",
                "train.checkpoint_interval=2", "train.log_interval=1", .. more,
            ]).Config;

            var config = Load();
            using (var task = new DetectionTask(config, TextWriter.Null))
            {
                Assert.That(task.Detector.RoiHeads.NumStages, Is.EqualTo(1));
                using var data = task.OpenTrainingData(1, DataPosition.Start, DataShard.Whole);
                using var batch = data.Next();
                task.Model.train();
                using var optimizer = optim.AdamW(task.Model.parameters(), lr: 2e-4);
                var (before, after) = FixedObjectiveDescent.Run(optimizer, () =>
                {
                    // The same RPN and RoI samples every step: only the weights change.
                    manual_seed(4);
                    var losses = task.Losses(batch);
                    Assert.That(losses.Keys.Where(TrainingTerms.IsLoss), Is.EquivalentTo(new[] { "loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask" }));
                    return losses.Where(t => TrainingTerms.IsLoss(t.Key)).Select(t => t.Value).Aggregate((a, b) => a + b);
                }, steps: 6);
                TestContext.Out.WriteLine($"Mask R-CNN demo loss on one batch: {before:F4} → {after:F4}");
                Assert.That(after, Is.LessThan(0.9 * before), $"loss {before:F4} → {after:F4}");
            }

            var workDir = Path.Combine(root, "work");
            using (var task = new DetectionTask(config, TextWriter.Null))
            {
                var result = new Trainer<Batch>(task, config, workDir, "cfg", TextWriter.Null).Run(null);
                Assert.That(result.Iteration, Is.EqualTo(2));
                var records = JsonLinesLog.Read(Path.Combine(workDir, "log.jsonl")).ToList();
                var training = records.Where(r => r.Mode is null && r.Has("loss")).ToList();
                Assert.That(training, Is.Not.Empty);
                foreach (var name in new[] { "loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask" })
                    Assert.That(training.All(r => double.IsFinite(r.Number(name))), Is.True, name);
                Assert.That(training.SelectMany(r => r.Fields.EnumerateObject().Select(p => p.Name)), Has.None.Contains("_stage"));
                var evaluation = records.Single(r => r.IsEvaluation);
                Assert.That(evaluation.Has("bbox_mAP") && evaluation.Has("segm_mAP"), Is.True);

                var (box, mask, detections) = task.EvaluateFull();
                Assert.That(DetectionTask.Metrics((box, mask))["bbox_mAP"], Is.EqualTo(evaluation.Number("bbox_mAP")), "the logged evaluation is the task's");
                Assert.That(detections, Is.Not.Empty, "an untrained head still scores above 0.05");
                Assert.That(detections.Select(d => d.CategoryId), Has.All.Matches<long>(DemoDatasetGenerator.CategoryIds.Contains));
                Assert.That(detections.All(d => d.Segmentation is not null), Is.True);
            }

            var boxesOnly = Load("model.det_head.mask_on=false");
            using (var fasterRcnn = new DetectionTask(boxesOnly, TextWriter.Null))
            {
                Assert.That(fasterRcnn.Detector.MaskOn, Is.False);
                using var data = fasterRcnn.OpenTrainingData(1, DataPosition.Start, DataShard.Whole);
                using var batch = data.Next();
                fasterRcnn.Model.train();
                using var scope = NewDisposeScope();
                var terms = fasterRcnn.Losses(batch);
                Assert.That(terms.Keys.Where(TrainingTerms.IsLoss), Is.EquivalentTo(new[] { "loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg" }));
                // StandardROIHeads' statistics carry no stage prefix, and without the mask head there are no mask statistics.
                Assert.That(terms.Keys.Where(k => !TrainingTerms.IsLoss(k)), Is.EquivalentTo(new[]
                {
                    "rpn/num_pos_anchors", "rpn/num_neg_anchors", "roi_head/num_fg_samples", "roi_head/num_bg_samples",
                    "fast_rcnn/cls_accuracy", "fast_rcnn/fg_cls_accuracy", "fast_rcnn/false_negative",
                }));
                fasterRcnn.Model.eval();
                Assert.That(DetectionTask.Metrics(fasterRcnn.Score(fasterRcnn.PredictValidation())).Keys, Has.All.StartWith("bbox_"));
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The stage keys of model.det_head: values the heads cannot be built from are refused naming the key.</summary>
    [TestCase("empty", "model.det_head.stage_iou_thresholds is empty; the box head needs one IoU threshold per stage and at least one stage (e.g. [0.5] for Mask R-CNN, [0.5, 0.6, 0.7] for Cascade Mask R-CNN)")]
    [TestCase("threshold", "model.det_head.stage_iou_thresholds must hold IoUs within (0, 1] (e.g. [0.5] for Mask R-CNN, [0.5, 0.6, 0.7] for Cascade Mask R-CNN), got [0.5, 0]")]
    [TestCase("above one", "model.det_head.stage_iou_thresholds must hold IoUs within (0, 1] (e.g. [0.5] for Mask R-CNN, [0.5, 0.6, 0.7] for Cascade Mask R-CNN), got [1.5]")]
    [TestCase("count", "model.det_head.stage_box_weights has 3 row(s) and model.det_head.stage_iou_thresholds 1 stage(s); give one row of box weights [wx, wy, ww, wh] per stage (e.g. [[10, 10, 5, 5]] for one stage)")]
    [TestCase("no weights", "model.det_head.stage_box_weights has 0 row(s) and model.det_head.stage_iou_thresholds 3 stage(s)")]
    [TestCase("three weights", "model.det_head.stage_box_weights[1] must be four positive numbers [wx, wy, ww, wh] (e.g. [10, 10, 5, 5]), got [20, 20, 10]")]
    [TestCase("zero weight", "model.det_head.stage_box_weights[0] must be four positive numbers [wx, wy, ww, wh] (e.g. [10, 10, 5, 5]), got [10, 10, 0, 5]")]
    public void BadStageSettingsNameTheirKey(string change, string expected)
    {
        var config = new ExperimentConfig { Task = TaskKind.Detection, Model = new ModelConfig { NumClasses = 5, Backbone = new BackboneConfig { Name = "vimdet_tiny" } } };
        var head = config.Model.DetHead;
        switch (change)
        {
            case "empty": head.StageIouThresholds = []; break;
            case "threshold": (head.StageIouThresholds, head.StageBoxWeights) = ([0.5, 0], [[10, 10, 5, 5], [20, 20, 10, 10]]); break;
            case "above one": (head.StageIouThresholds, head.StageBoxWeights) = ([1.5], [[10, 10, 5, 5]]); break;
            case "count": head.StageIouThresholds = [0.5]; break;
            case "no weights": head.StageBoxWeights = []; break;
            case "three weights": head.StageBoxWeights[1] = [20, 20, 10]; break;
            default: head.StageBoxWeights[0] = [10, 10, 0, 5]; break;
        }
        var error = Assert.Throws<VimException>(() => DetectionTask.FromConfig(config).Dispose())!;
        Assert.That(error.Message, Does.StartWith(expected));
    }

    /// <summary>
    /// The keys reach the heads: the defaults build the 3-stage class-agnostic cascade (4 deltas per stage), the Mask R-CNN
    /// demo config one class-specific stage (4K deltas) under the same state-dict names, box_head.0 and box_predictor.0.
    /// </summary>
    [Test]
    public void TheConfigKeysBuildTheCascadeByDefaultAndOneClassSpecificStageForMaskRcnn()
    {
        ExperimentConfig Load(string name) =>
            ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "det", name), ["model.backbone.img_size=64"]).Config;
        using (var cascade = DetectionTask.FromConfig(Load("cascade_mask_rcnn_vim_tiny_demo_coco.yaml")))
        {
            var s = cascade.RoiHeads.Settings;
            Assert.That(s.StageIouThresholds, Is.EqualTo(new[] { 0.5, 0.6, 0.7 }));
            Assert.That(s.StageBoxWeights, Is.EqualTo(new[] { (10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0) }));
            Assert.That(s.ClassAgnosticBoxRegression, Is.True);
            var state = cascade.state_dict();
            Assert.That(Enumerable.Range(0, 3).Select(k => state[$"roi_heads.box_predictor.{k}.bbox_pred.weight"].shape[0]), Is.EqualTo(new long[] { 4, 4, 4 }));
            Assert.That(cascade.RoiHeads.Predictors.Select(p => p.BoxCoder.WeightX), Is.EqualTo(new[] { 10.0, 20.0, 30.0 }));
        }
        using var maskRcnn = DetectionTask.FromConfig(Load("mask_rcnn_vim_tiny_demo_coco.yaml"));
        Assert.That(maskRcnn.RoiHeads.NumStages, Is.EqualTo(1));
        Assert.That(maskRcnn.RoiHeads.StageMatchers.Single().Thresholds, Is.EqualTo(new[] { 0.5 }));
        var coder = maskRcnn.RoiHeads.Predictors.Single().BoxCoder;
        Assert.That((coder.WeightX, coder.WeightY, coder.WeightW, coder.WeightH), Is.EqualTo((10.0, 10.0, 5.0, 5.0)));
        var keys = maskRcnn.state_dict();
        Assert.That(keys["roi_heads.box_predictor.0.bbox_pred.weight"].shape[0], Is.EqualTo(4 * DemoDatasetGenerator.ClassNames.Count));
        Assert.That(keys.Keys.Where(k => k.StartsWith("roi_heads.box_", StringComparison.Ordinal)), Has.All.Matches<string>(k => k!.Contains(".0.")));
        Assert.That(keys.Keys, Does.Contain("roi_heads.box_head.0.fc1.weight").And.Contain("roi_heads.mask_head.predictor.weight"));
    }
}
