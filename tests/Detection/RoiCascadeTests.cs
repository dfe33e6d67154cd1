using Vim.Core.Engine;
using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Modeling;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class RoiCascadeTests
{
    private static Boxes B(params float[] xyxy) => new(tensor(xyxy).view(-1, 4));

    private static Instances Gt(long h, long w, Boxes boxes, long[] classes) =>
        new(h, w, boxes, tensor(classes), masks: zeros(new[] { boxes.Count, h, w }, ScalarType.Bool));

    /// <summary>
    /// At inference the heads take their RoIs in chunks whose largest activation stays within glibc's 32 MiB mmap threshold
    /// (<see cref="CascadeRoiHeads.InferenceChunkRois"/>): with 256 channels, float32 7² box features are 256 · 49 · 4 = 50,176
    /// bytes a RoI, so 33,554,432 / 50,176 → 668 at a time; the mask head's 14² features 200,704 bytes (its 8-channel 28² maps
    /// are smaller), 167 at a time; float64 half as many. Three images of 500 RoIs (three box chunks) and 400 detections
    /// (three mask chunks) give what one pass over all of them gives: the same scores, deltas and mask probabilities, up to
    /// how libtorch blocks a product of another row count.
    /// </summary>
    [Test]
    public void InferenceTakesTheRoisInChunksWithTheResultsOfOnePass()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var heads = new CascadeRoiHeads(256, RoiHeadModulesTests.TinySettings(), seed: 3);
        heads.eval();
        Assert.That((heads.InferenceChunkRois(mask: false, ScalarType.Float32), heads.InferenceChunkRois(mask: true, ScalarType.Float32)), Is.EqualTo((668L, 167L)));
        Assert.That((heads.InferenceChunkRois(mask: false, ScalarType.Float64), heads.InferenceChunkRois(mask: true, ScalarType.Float64)), Is.EqualTo((334L, 83L)));

        var gen = new Generator(4);
        var features = new[] { 16L, 8, 4, 2 }.Select(side => randn(new[] { 3, 256, side, side }, generator: gen)).ToArray();
        Boxes RandomBoxes(int count)
        {
            var corner = rand(new[] { (long)count, 2 }, generator: gen) * 48;
            var size = rand(new[] { (long)count, 2 }, generator: gen) * 40 + 2;
            return new Boxes(cat(new[] { corner, corner + size }, 1));
        }
        var boxes = Enumerable.Range(0, 3).Select(_ => RandomBoxes(500)).ToList();
        var (scores, deltas) = heads.RunStage(features, boxes, 1);
        var boxHead = (FastRcnnConvFcHead)heads.named_children().First(c => c.name == "box_head").module.named_children().First(c => c.name == "1").module;
        var (onePassScores, onePassDeltas) = heads.Predictors[1].forward(boxHead.forward(heads.BoxPooler.Forward(features, boxes)));
        Assert.That(scores.shape, Is.EqualTo(new long[] { 1500, 4 }));
        Assert.That(scores.allclose(onePassScores, rtol: 1e-5, atol: 1e-6) && deltas.allclose(onePassDeltas, rtol: 1e-5, atol: 1e-6), Is.True, "box stage");

        var detections = new[] { 150, 0, 250 }.Select(count => new Instances(64, 64, RandomBoxes(count), randint(3, new[] { (long)count }, generator: gen))).ToList();
        var probabilities = heads.MaskProbabilities(features, detections);
        var onePassLogits = heads.MaskHead!.forward(heads.MaskPooler.Forward(features, detections.Select(d => d.Boxes).ToList()));
        var onePass = MaskRcnnConvUpsampleHead.SelectClass(onePassLogits, cat(detections.Select(d => d.Classes!).ToArray(), 0)).sigmoid();
        Assert.That(probabilities.shape, Is.EqualTo(new long[] { 400, 28, 28 }));
        Assert.That(probabilities.allclose(onePass, rtol: 1e-5, atol: 1e-6), Is.True, "mask probabilities");
        // A misplaced chunk would show: rows of other RoIs differ far beyond the tolerance.
        Assert.That(probabilities[..200].allclose(onePass[200..], rtol: 1e-5, atol: 1e-6), Is.False);
        Assert.That(Assert.Throws<ArgumentException>(() => heads.MaskProbabilities(features, detections.Take(2).ToList()))!.Message,
            Does.Contain("2 box lists given for a batch of 3 images"));
    }

    [Test]
    public void StageLabelsFollowEachStagesIouThreshold()
    {
        using var scope = NewDisposeScope();
        var heads = new CascadeRoiHeads(8, RoiHeadModulesTests.TinySettings());
        // gt [0, 0, 11, 10] (area 110) vs proposal [0, 0, 20, 10] (area 200): IoU 0.55.
        // Second proposal: [0, 0, 11, 10.5] → IoU 110/115.5 ≈ 0.95; third: far away → IoU 0.
        var gt = new[] { Gt(50, 50, B(0, 0, 11, 10), new long[] { 2 }) };
        var boxes = new[] { B(0, 0, 20, 10, 0, 0, 11, 10.5f, 30, 30, 40, 40) };
        var stage0 = heads.MatchAndLabel(0, boxes, gt);
        var stage1 = heads.MatchAndLabel(1, boxes, gt);
        var stage2 = heads.MatchAndLabel(2, boxes, gt);
        Assert.That(stage0[0].GtClasses.data<long>().ToArray(), Is.EqualTo(new long[] { 2, 2, 3 }));
        Assert.That(stage1[0].GtClasses.data<long>().ToArray(), Is.EqualTo(new long[] { 3, 2, 3 }));
        Assert.That(stage2[0].GtClasses.data<long>().ToArray(), Is.EqualTo(new long[] { 3, 2, 3 }));
        Assert.That(stage0[0].GtBoxes[0].data<float>().ToArray(), Is.EqualTo(new[] { 0f, 0, 11, 10 }));

        // IoU 0.65 ([0, 0, 11, 10] vs [0, 0, 11, 15.3846]): foreground up to stage 1 (0.6), background at stage 2 (0.7).
        var mid = new[] { B(0, 0, 11, 10 / 0.65f) };
        Assert.That(heads.MatchAndLabel(1, mid, gt)[0].GtClasses.item<long>(), Is.EqualTo(2));
        Assert.That(heads.MatchAndLabel(2, mid, gt)[0].GtClasses.item<long>(), Is.EqualTo(3));
    }

    [Test]
    public void FirstStageAppendsGroundTruthAndSamplesWithBackgroundK()
    {
        using var scope = NewDisposeScope();
        var settings = RoiHeadModulesTests.TinySettings() with { BatchSizePerImage = 4, PositiveFraction = 0.25 };
        var heads = new CascadeRoiHeads(8, settings);
        var gt = new[]
        {
            Gt(50, 50, B(0, 0, 11, 10, 20, 20, 40, 40), new long[] { 1, 0 }),
            Gt(50, 50, B(), Array.Empty<long>()),
        };
        var proposals = new[]
        {
            new Instances(50, 50, B(0, 0, 20, 10, 30, 0, 40, 5, 0, 40, 5, 50, 45, 45, 50, 50)),
            new Instances(50, 50, B(0, 0, 20, 10, 30, 0, 40, 5)),
        };
        var labeled = heads.LabelAndSampleProposals(proposals, gt, new Generator(1));
        // Image 0: 4 proposals + 2 appended gt boxes; positives are proposal 0 (IoU 0.55) and the 2 gt boxes;
        // 4 × 0.25 = 1 positive is sampled, the rest are negatives (3 available).
        var classes = labeled[0].GtClasses.data<long>().ToArray();
        Assert.That(classes.Length, Is.EqualTo(4));
        Assert.That(classes.Count(c => c < 3), Is.EqualTo(1));
        Assert.That(classes.Count(c => c == 3), Is.EqualTo(3));
        int fg = Array.FindIndex(classes, c => c < 3);
        var fgBox = labeled[0].Boxes.Tensor[fg];
        var fgGt = labeled[0].GtBoxes[fg];
        long gtIndex = labeled[0].GtIndex[fg].item<long>();
        Assert.That(fgGt.eq(gt[0].Boxes.Tensor[gtIndex]).all().item<bool>(), Is.True);
        Assert.That(classes[fg], Is.EqualTo(gt[0].Classes![gtIndex].item<long>()));
        Assert.That(BoxGeometry.PairwiseIou(new Boxes(fgBox.view(1, 4)), new Boxes(fgGt.view(1, 4))).item<float>(), Is.GreaterThanOrEqualTo(0.5f));
        // Image 1 has no ground truth: all its proposals are background.
        Assert.That(labeled[1].GtClasses.data<long>().ToArray(), Is.EqualTo(new long[] { 3, 3 }));

        // With room for everything, the appended ground truth shows up as exact boxes.
        var roomy = new CascadeRoiHeads(8, settings with { BatchSizePerImage = 64, PositiveFraction = 1.0 });
        var all = roomy.LabelAndSampleProposals(proposals, gt, new Generator(2));
        Assert.That(all[0].Boxes.Count, Is.EqualTo(6));
        Assert.That(all[0].GtClasses.data<long>().Count(c => c < 3), Is.EqualTo(3));
        var iou = BoxGeometry.PairwiseIou(all[0].Boxes, gt[0].Boxes);
        Assert.That(iou.eq(1).sum().ToInt64(), Is.EqualTo(2));
    }

    [Test]
    public void OneTrainingStepOfRpnCascadeAndMaskHeadReachesEveryParameter()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        const long channels = 8;
        var rpn = new Rpn(channels, new AnchorGenerator(new[] { new[] { 8.0 }, new[] { 16.0 }, new[] { 32.0 }, new[] { 64.0 }, new[] { 128.0 } },
            new[] { 0.5, 1.0, 2.0 }, new long[] { 4, 8, 16, 32, 64 }, 0),
            new RpnSettings { PreNmsTopKTrain = 100, PostNmsTopKTrain = 40, PreNmsTopKTest = 100, PostNmsTopKTest = 30 }, seed: 2);
        var heads = new CascadeRoiHeads(channels, RoiHeadModulesTests.TinySettings(), seed: 3);
        var features = new[] { 16L, 8, 4, 2, 1 }.Select(s => randn(new[] { 2, channels, s, s }, generator: gen).requires_grad_(true)).ToArray();
        var sizes = new (long, long)[] { (64, 64), (60, 50) };
        var masks = zeros(new long[] { 2, 64, 64 }, ScalarType.Bool);
        masks[0, 6..30, 8..28] = tensor(true);
        masks[1, 12..60, 40..58] = tensor(true);
        var targets = new[]
        {
            new Instances(64, 64, B(6, 4, 30, 32, 38, 10, 60, 62), tensor(new long[] { 0, 2 }), masks: masks),
            new Instances(60, 50, B(), zeros(0, ScalarType.Int64), masks: zeros(new long[] { 0, 60, 50 }, ScalarType.Bool)),
        };
        rpn.train();
        heads.train();
        var rpnOut = rpn.Forward(features, sizes, targets.Select(t => t.Boxes).ToList(), new Generator(4));
        var roiOut = heads.Forward(features[..4], rpnOut.Proposals, targets, new Generator(5));
        Assert.That(roiOut.Detections, Is.Null);
        Assert.That(roiOut.Losses.Keys.Where(TrainingTerms.IsLoss), Is.EquivalentTo(new[]
        {
            "loss_cls_stage0", "loss_box_reg_stage0", "loss_cls_stage1", "loss_box_reg_stage1",
            "loss_cls_stage2", "loss_box_reg_stage2", "loss_mask",
        }));
        // detectron2's names: stage 0's sample counts come from label_and_sample_proposals (no prefix), later stages' from
        // _match_and_label_boxes (stage{k}/); every stage's classification statistics sit in its name_scope stage{k}/.
        Assert.That(roiOut.Losses.Keys.Where(k => !TrainingTerms.IsLoss(k)), Is.EquivalentTo(new[]
        {
            "roi_head/num_fg_samples", "roi_head/num_bg_samples", "stage1/roi_head/num_fg_samples", "stage1/roi_head/num_bg_samples",
            "stage2/roi_head/num_fg_samples", "stage2/roi_head/num_bg_samples",
            "stage0/fast_rcnn/cls_accuracy", "stage0/fast_rcnn/fg_cls_accuracy", "stage0/fast_rcnn/false_negative",
            "stage1/fast_rcnn/cls_accuracy", "stage1/fast_rcnn/fg_cls_accuracy", "stage1/fast_rcnn/false_negative",
            "stage2/fast_rcnn/cls_accuracy", "stage2/fast_rcnn/fg_cls_accuracy", "stage2/fast_rcnn/false_negative",
            "mask_rcnn/accuracy", "mask_rcnn/false_positive", "mask_rcnn/false_negative",
        }));
        foreach (var (name, value) in roiOut.Losses.Where(t => TrainingTerms.IsLoss(t.Key)))
            Assert.That(double.IsFinite(value.ToDouble()), Is.True, name);
        Assert.That(roiOut.Losses.Where(t => !TrainingTerms.IsLoss(t.Key)).Select(t => t.Key).Where(k => roiOut.Losses[k].requires_grad), Is.Empty,
            "the statistics are outside autograd");
        // At init the class logits are ≈ 0 (N(0, 0.01²) weights) → CE ≈ ln(K + 1); mask logits ≈ 0 → BCE ≈ ln 2.
        for (int k = 0; k < 3; k++)
            Assert.That(roiOut.Losses[$"loss_cls_stage{k}"].ToDouble(), Is.EqualTo(Math.Log(4)).Within(0.05));
        Assert.That(roiOut.Losses["loss_mask"].ToDouble(), Is.EqualTo(Math.Log(2)).Within(0.01));
        Assert.That(roiOut.Losses["loss_box_reg_stage0"].ToDouble(), Is.GreaterThan(0));

        var total = rpnOut.ObjectnessLoss! + rpnOut.BoxLoss! + roiOut.Losses.Where(t => TrainingTerms.IsLoss(t.Key)).Select(t => t.Value).Aggregate((a, b) => a + b);
        total.backward();
        foreach (var (name, p) in rpn.named_parameters().Concat(heads.named_parameters()))
        {
            Assert.That(p.grad, Is.Not.Null, name);
            Assert.That(isfinite(p.grad!).all().item<bool>(), Is.True, name);
        }
        // Every head's weights receive signal (the mask predictor only on the ground-truth classes' channels).
        foreach (var (name, p) in heads.named_parameters().Where(np => np.name.EndsWith("weight")))
            Assert.That(p.grad!.abs().sum().ToDouble(), Is.GreaterThan(0), name);
        Assert.That(features.All(f => f.grad is not null && f.grad.abs().sum().ToDouble() > 0), Is.True);

        // Inference on the same features: bounded, clipped detections with 28×28 mask probabilities.
        rpn.eval();
        heads.eval();
        var proposals = rpn.Forward(features, sizes).Proposals;
        var inference = heads.Forward(features[..4], proposals);
        Assert.That(inference.Losses, Is.Empty);
        Assert.That(inference.Detections!.Count, Is.EqualTo(2));
        for (int i = 0; i < 2; i++)
        {
            var d = inference.Detections[i];
            Assert.That(d.Count, Is.LessThanOrEqualTo(100));
            Assert.That(d.Masks!.shape, Is.EqualTo(new[] { d.Count, 28L, 28L }));
            if (d.Count == 0) continue;
            Assert.That(d.Scores!.min().ToDouble(), Is.GreaterThan(0.05));
            Assert.That(d.Boxes.Tensor[.., 2].max().ToDouble(), Is.LessThanOrEqualTo(sizes[i].Item2));
            Assert.That(d.Boxes.Tensor[.., 3].max().ToDouble(), Is.LessThanOrEqualTo(sizes[i].Item1));
            Assert.That(d.Classes!.max().ToInt64(), Is.LessThan(3));
        }
    }

    [Test]
    public void StagesPassOneThirdOfTheGradientToTheFeaturesInTraining()
    {
        using var scope = NewDisposeScope();
        var heads = new CascadeRoiHeads(8, RoiHeadModulesTests.TinySettings(), seed: 7);
        var gen = new Generator(8);
        var features = new[] { 16L, 8, 4, 2 }.Select(s => randn(new[] { 1, 8, s, s }, generator: gen)).ToArray();
        var boxes = new[] { B(2, 2, 30, 40, 10, 5, 60, 60) };
        Tensor FeatureGrad(bool viaStage)
        {
            var leaves = features.Select(f => f.detach().clone().requires_grad_(true)).ToArray();
            var scores = viaStage
                ? heads.RunStage(leaves, boxes, 1).Scores
                : heads.Predictors[1].forward(((FastRcnnConvFcHead)heads.named_children().First(c => c.name == "box_head").module
                    .named_children().First(c => c.name == "1").module).forward(heads.BoxPooler.Forward(leaves, boxes))).Scores;
            scores.square().sum().backward();
            return cat(leaves.Select(l => (l.grad ?? zeros_like(l)).flatten()).ToArray(), 0);
        }
        heads.train();
        var scaled = FeatureGrad(viaStage: true);
        var plain = FeatureGrad(viaStage: false);
        Assert.That(plain.abs().sum().ToDouble(), Is.GreaterThan(0));
        Assert.That((scaled - plain / 3).abs().max().ToDouble(), Is.LessThan(1e-6 * plain.abs().max().ToDouble() + 1e-12));
        // At inference nothing is scaled.
        heads.eval();
        var evalGrad = FeatureGrad(viaStage: true);
        Assert.That((evalGrad - plain).abs().max().ToDouble(), Is.LessThan(1e-6 * plain.abs().max().ToDouble() + 1e-12));
    }

    [Test]
    public void BatchesWithoutForegroundOrDetectionsStillWork()
    {
        using var scope = NewDisposeScope();
        var heads = new CascadeRoiHeads(8, RoiHeadModulesTests.TinySettings() with { TestScoreThreshold = 1.0 }, seed: 9);
        var gen = new Generator(10);
        var features = new[] { 16L, 8, 4, 2 }.Select(s => randn(new[] { 2, 8, s, s }, generator: gen)).ToArray();
        // Image 0 has proposals but no ground truth; image 1 has neither proposals nor ground truth.
        var proposals = new[] { new Instances(64, 64, B(2, 2, 30, 40, 10, 5, 60, 60)), new Instances(64, 64, B()) };
        var targets = new[]
        {
            new Instances(64, 64, B(), zeros(0, ScalarType.Int64), masks: zeros(new long[] { 0, 64, 64 }, ScalarType.Bool)),
            new Instances(64, 64, B(), zeros(0, ScalarType.Int64), masks: zeros(new long[] { 0, 64, 64 }, ScalarType.Bool)),
        };
        heads.train();
        var losses = heads.Forward(features, proposals, targets, new Generator(1)).Losses;
        Assert.That(losses["loss_mask"].ToDouble(), Is.EqualTo(0));
        Assert.That(losses["loss_box_reg_stage2"].ToDouble(), Is.EqualTo(0));
        Assert.That(losses["loss_cls_stage0"].ToDouble(), Is.EqualTo(Math.Log(4)).Within(0.05));
        losses.Where(t => TrainingTerms.IsLoss(t.Key)).Select(t => t.Value).Aggregate((a, b) => a + b).backward();
        Assert.That(heads.parameters().All(p => p.grad is not null), Is.True);

        // A threshold no probability can exceed: no detections, empty (0, 28, 28) masks.
        heads.eval();
        var detections = heads.Forward(features, proposals).Detections!;
        Assert.That(detections.Select(d => d.Count), Is.EqualTo(new long[] { 0, 0 }));
        Assert.That(detections[0].Masks!.shape, Is.EqualTo(new long[] { 0, 28, 28 }));
    }

    /// <summary>
    /// Heads in eval mode on 8 channels with larger predictor weights than the initial ones, so that the stages disagree
    /// visibly and classes and boxes differ between RoIs, and p2–p5 features of one 64² image; the same every call.
    /// </summary>
    internal static (CascadeRoiHeads Heads, Tensor[] Features) HeadsWithDistinctStages(CascadeRoiHeadsSettings settings)
    {
        var heads = new CascadeRoiHeads(8, settings, seed: 12);
        using (no_grad())
            foreach (var (name, p) in heads.named_parameters().Where(np => np.name.Contains("box_predictor") && np.name.EndsWith("weight")))
                p.normal_(0, 0.3, new Generator(13));
        heads.eval();
        var gen = new Generator(14);
        return (heads, new[] { 16L, 8, 4, 2 }.Select(s => randn(new[] { 1, 8, s, s }, generator: gen)).ToArray());
    }

    [Test]
    public void InferenceAveragesTheStagesScoresAndUsesTheLastStagesBoxes()
    {
        using var scope = NewDisposeScope();
        // No threshold, no suppression, no cap: every (RoI, class) pair comes out.
        var settings = RoiHeadModulesTests.TinySettings() with { TestScoreThreshold = 0, TestNmsThreshold = 1.0, DetectionsPerImage = -1, MaskOn = false };
        var (heads, features) = HeadsWithDistinctStages(settings);
        var proposals = new[] { new Instances(64, 64, B(2, 2, 30, 40, 10, 5, 60, 60, 0, 30, 20, 63)) };
        var detections = heads.Forward(features, proposals).Detections![0];

        // Reference: run the stages by hand.
        var boxes = proposals[0].Boxes;
        var probabilities = zeros(3, 4);
        Tensor last = boxes.Tensor;
        for (int k = 0; k < 3; k++)
        {
            var (scores, deltas) = heads.RunStage(features, new[] { boxes }, k);
            probabilities += FastRcnnOutputLayers.PredictProbabilities(scores) / 3;
            last = heads.Predictors[k].PredictBoxes(deltas, boxes.Tensor);
            boxes = new Boxes(last).Clip(64, 64);
        }
        var expectedScores = probabilities[.., ..3].flatten().sort(descending: true).Values;
        Assert.That(detections.Count, Is.EqualTo(9));
        Assert.That((detections.Scores! - expectedScores).abs().max().ToDouble(), Is.LessThan(1e-6));
        var best = probabilities[.., ..3].flatten().argmax().ToInt64();
        var expectedBox = new Boxes(last).Clip(64, 64).Tensor[best / 3];
        Assert.That((detections.Boxes.Tensor[0] - expectedBox).abs().max().ToDouble(), Is.LessThan(1e-4));
        Assert.That(detections.Classes![0].ToInt64(), Is.EqualTo(best % 3));
        // Not simply the last stage's scores.
        var (lastScores, _) = heads.RunStage(features, new[] { boxes }, 2);
        Assert.That(probabilities.sub(FastRcnnOutputLayers.PredictProbabilities(lastScores)).abs().max().ToDouble(), Is.GreaterThan(1e-3));
    }

    [Test]
    public void GradientDescentOnFixedProposalsLowersTheCascadeLoss()
    {
        using var scope = NewDisposeScope();
        var heads = new CascadeRoiHeads(8, RoiHeadModulesTests.TinySettings(), seed: 15);
        var gen = new Generator(16);
        var features = new[] { 16L, 8, 4, 2 }.Select(s => randn(new[] { 1, 8, s, s }, generator: gen)).ToArray();
        var masks = zeros(new long[] { 1, 64, 64 }, ScalarType.Bool);
        masks[0, 10..40, 12..30] = tensor(true);
        var targets = new[] { new Instances(64, 64, B(10, 8, 34, 44), tensor(new long[] { 1 }), masks: masks) };
        var proposals = new[] { new Instances(64, 64, B(8, 8, 30, 40, 12, 10, 36, 46, 40, 40, 60, 60, 0, 0, 20, 20, 30, 5, 60, 30)) };
        var optimizer = optim.SGD(heads.parameters(), 0.05);
        heads.train();
        var (before, after) = FixedObjectiveDescent.Run(optimizer,
            () => heads.Forward(features, proposals, targets, new Generator(1)).Losses.Where(t => TrainingTerms.IsLoss(t.Key)).Select(t => t.Value).Aggregate((a, b) => a + b), steps: 30);
        TestContext.Out.WriteLine($"cascade loss before {before:F4}, after 30 steps {after:F4}");
        Assert.That(after, Is.LessThan(0.7 * before), $"loss {before:F4} → {after:F4}");
    }

    [Test]
    public void TrainingRequiresGroundTruthWithMasks()
    {
        using var scope = NewDisposeScope();
        var heads = new CascadeRoiHeads(8, RoiHeadModulesTests.TinySettings());
        heads.train();
        var features = new[] { 16L, 8, 4, 2 }.Select(s => zeros(1, 8, s, s)).ToArray();
        var proposals = new[] { new Instances(64, 64, B(0, 0, 10, 10)) };
        Assert.Throws<ArgumentException>(() => heads.Forward(features, proposals));
        var noMasks = new[] { new Instances(64, 64, B(0, 0, 10, 10), tensor(new long[] { 0 })) };
        var ex = Assert.Throws<ArgumentException>(() => heads.Forward(features, proposals, noMasks));
        Assert.That(ex!.Message, Does.Contain("masks"));
    }
}
