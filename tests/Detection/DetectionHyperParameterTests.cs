using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// model.det_head's RPN and RoI-head hyper-parameters (mmdet's train_cfg / loss_weight / stage_loss_weights, detectron2's
/// RPN.* and ROI_*): bound into the detector's settings, applied as their upstream meaning says, refused by key when unusable.
/// </summary>
public class DetectionHyperParameterTests
{
    private static Boxes B(params float[] xyxy) => new(tensor(xyxy).view(-1, 4));

    private static ExperimentConfig Config(Action<DetectionHeadConfig>? edit = null)
    {
        var config = new ExperimentConfig { Task = TaskKind.Detection, Model = new ModelConfig { NumClasses = 3 } };
        config.Model.Backbone.Name = "vimdet_tiny";
        edit?.Invoke(config.Model.DetHead);
        return config;
    }

    /// <summary>
    /// Every key reaches the settings it names; without them the settings are the detector's defaults of before the keys
    /// existed (detectron2's ViTDet values), so the demo configs train as they did.
    /// </summary>
    [Test]
    public void KeysReachTheSettingsAndDefaultsAreTheFormerValues()
    {
        using var scope = NewDisposeScope();
        using (var defaults = DetectionTask.FromConfig(Config()))
        {
            var rpn = defaults.ProposalGenerator.Settings;
            Assert.That(rpn.IouThresholds, Is.EqualTo(new[] { 0.3, 0.7 }));
            Assert.That((rpn.PositiveFraction, rpn.NmsThreshold, rpn.MinBoxSize, rpn.SmoothL1Beta, rpn.ObjectnessLossWeight, rpn.BoxLossWeight),
                Is.EqualTo((0.5, 0.7, 0.0, 0.0, 1.0, 1.0)));
            Assert.That(rpn.BoxRegressionLoss, Is.EqualTo(BoxRegressionLossType.SmoothL1));
            Assert.That(defaults.ProposalGenerator.Anchors.AnchorsPerLocation, Is.EqualTo(3));
            Assert.That(defaults.ProposalGenerator.Anchors.CellAnchors(2).data<float>().ToArray(),
                Is.EqualTo(AnchorGenerator.VitDetDefault().CellAnchors(2).data<float>().ToArray()));
            var roi = defaults.RoiHeads.Settings;
            Assert.That((roi.PositiveFraction, roi.ProposalAppendGt, roi.BoxPoolerResolution, roi.MaskPoolerResolution, roi.PoolerSamplingRatio, roi.SmoothL1Beta),
                Is.EqualTo((0.25, true, 7L, 14L, 0, 0.0)));
            Assert.That((roi.ClassificationLossWeight, roi.BoxLossWeight, roi.MaskLossWeight, roi.StageLossWeights), Is.EqualTo((1.0, 1.0, 1.0, (IReadOnlyList<double>?)null)));
            Assert.That(roi.BoxRegressionLoss, Is.EqualTo(BoxRegressionLossType.SmoothL1));
        }
        var config = Config(head =>
        {
            head.RpnIouThresholds = [0.4, 0.6];
            head.RpnPositiveFraction = 0.25;
            head.RpnNmsThreshold = 0.65;
            head.RpnMinBoxSize = 2;
            head.RpnSmoothL1Beta = 0.1;
            head.RpnBboxRegLossType = BoxRegressionLossType.Diou;
            head.RpnLossClsWeight = 2;
            head.RpnLossBboxWeight = 3;
            head.RpnAnchorSizes = [[16, 24], [32, 48], [64, 96], [128, 192], [256, 384]];
            head.RpnAnchorAspectRatios = [1];
            head.RoiPositiveFraction = 0.5;
            head.RoiProposalAppendGt = false;
            head.BoxPoolerResolution = 5;
            head.MaskPoolerResolution = 7;
            head.PoolerSamplingRatio = 2;
            head.RoiSmoothL1Beta = 1;
            head.RoiBboxRegLossType = BoxRegressionLossType.Giou;
            head.RoiLossClsWeight = 1.5;
            head.RoiLossBboxWeight = 10;
            head.MaskLossWeight = 0.5;
            head.StageLossWeights = [1, 0.5, 0.25];
        });
        using var model = DetectionTask.FromConfig(config);
        var r = model.ProposalGenerator.Settings;
        Assert.That(r.IouThresholds, Is.EqualTo(new[] { 0.4, 0.6 }));
        Assert.That((r.PositiveFraction, r.NmsThreshold, r.MinBoxSize, r.SmoothL1Beta, r.ObjectnessLossWeight, r.BoxLossWeight, r.BoxRegressionLoss),
            Is.EqualTo((0.25, 0.65, 2.0, 0.1, 2.0, 3.0, BoxRegressionLossType.Diou)));
        Assert.That(model.ProposalGenerator.Sampler.PositiveFraction, Is.EqualTo(0.25));
        // Two sizes × one ratio: square cells of side 16 and 24 on p2, two anchors per location.
        Assert.That(model.ProposalGenerator.Anchors.AnchorsPerLocation, Is.EqualTo(2));
        Assert.That(model.ProposalGenerator.Anchors.CellAnchors(0).data<float>().ToArray(), Is.EqualTo(new[] { -8f, -8, 8, 8, -12, -12, 12, 12 }));
        var s = model.RoiHeads.Settings;
        Assert.That((s.PositiveFraction, s.ProposalAppendGt, s.BoxPoolerResolution, s.MaskPoolerResolution, s.PoolerSamplingRatio, s.SmoothL1Beta, s.BoxRegressionLoss),
            Is.EqualTo((0.5, false, 5L, 7L, 2, 1.0, BoxRegressionLossType.Giou)));
        Assert.That((s.ClassificationLossWeight, s.BoxLossWeight, s.MaskLossWeight), Is.EqualTo((1.5, 10.0, 0.5)));
        Assert.That(s.StageLossWeights, Is.EqualTo(new[] { 1, 0.5, 0.25 }));
        Assert.That(model.RoiHeads.Predictors.Select(p => p.BoxRegressionLoss), Is.All.EqualTo(BoxRegressionLossType.Giou));
    }

    /// <summary>
    /// rpn_iou_thresholds [negative, positive] label anchors as detectron2's Matcher: IoU below negative background (0), at or
    /// above positive foreground (1), between ignored (−1). Ground truth [0, 0, 10, 10] (area 100) against anchors of IoU
    /// 1, 0.5 ([0, 0, 10, 5]), 0.2 ([0, 0, 10, 2]), 0.4 ([0, 0, 10, 4]) and 0 (disjoint), every one sampled (256 per image):
    /// the defaults [0.3, 0.7] give 1, −1, 0, −1, 0; [0.4, 0.45] give 1, 1, 0, −1, 0 (0.4 is not below 0.4).
    /// </summary>
    [TestCase(null, new long[] { 1, -1, 0, -1, 0 })]
    [TestCase(new[] { 0.4, 0.45 }, new long[] { 1, 1, 0, -1, 0 })]
    public void RpnIouThresholdsLabelAnchorsAsComputedByHand(double[]? thresholds, long[] expected)
    {
        using var scope = NewDisposeScope();
        using var model = DetectionTask.FromConfig(Config(head => { if (thresholds is not null) head.RpnIouThresholds = [.. thresholds]; }));
        var anchors = B(0, 0, 10, 10, 0, 0, 10, 5, 0, 0, 10, 2, 0, 0, 10, 4, 20, 20, 30, 30);
        var (labels, matched) = model.ProposalGenerator.LabelAndSampleAnchors(anchors, new[] { B(0, 0, 10, 10) }, new Generator(1));
        Assert.That(labels[0].data<long>().ToArray(), Is.EqualTo(expected));
        Assert.That(matched[0][1].data<float>().ToArray(), Is.EqualTo(new[] { 0f, 0, 10, 10 }));
    }

    /// <summary>
    /// stage_loss_weights multiply each stage's loss_cls and loss_box_reg, roi_loss_cls_weight / roi_loss_bbox_weight every
    /// stage's, mask_loss_weight loss_mask: with the same seeds the weighted heads log the unweighted losses times
    /// (class weight × stage weight) and so on, exactly (powers of two scale a float without rounding), and the logged
    /// statistics are untouched.
    /// </summary>
    [Test]
    public void StageAndLossWeightsMultiplyEachLoggedLossExactly()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var features = new[] { 16L, 8, 4, 2 }.Select(s => randn(new[] { 2, 8, s, s }, generator: gen)).ToArray();
        var masks = zeros(new long[] { 2, 64, 64 }, ScalarType.Bool);
        masks[0, 6..30, 8..28] = tensor(true);
        masks[1, 12..60, 40..58] = tensor(true);
        var targets = new[]
        {
            new Instances(64, 64, B(6, 4, 30, 32, 38, 10, 60, 62), tensor(new long[] { 0, 2 }), masks: masks),
            new Instances(64, 64, B(4, 6, 34, 30), tensor(new long[] { 1 }), masks: masks[..1]),
        };
        var proposals = new[]
        {
            new Instances(64, 64, B(5, 5, 28, 30, 36, 12, 58, 60, 0, 0, 20, 20, 40, 40, 60, 60)),
            new Instances(64, 64, B(6, 8, 30, 28, 2, 2, 60, 60, 30, 30, 50, 50)),
        };
        Dictionary<string, double> Losses(CascadeRoiHeadsSettings settings)
        {
            using var heads = new CascadeRoiHeads(8, settings, seed: 3);
            heads.train();
            return heads.Forward(features, proposals, targets, new Generator(5)).Losses.ToDictionary(t => t.Key, t => t.Value.ToDouble());
        }
        var unweighted = Losses(RoiHeadModulesTests.TinySettings());
        var weighted = Losses(RoiHeadModulesTests.TinySettings() with
        {
            StageLossWeights = [1, 0.5, 0.25], ClassificationLossWeight = 2, BoxLossWeight = 0.5, MaskLossWeight = 4,
        });
        double[] stage = [1, 0.5, 0.25];
        for (int k = 0; k < 3; k++)
        {
            Assert.That(unweighted[$"loss_cls_stage{k}"], Is.GreaterThan(0));
            Assert.That(unweighted[$"loss_box_reg_stage{k}"], Is.GreaterThan(0), $"stage {k} has foreground");
            Assert.That(weighted[$"loss_cls_stage{k}"], Is.EqualTo(unweighted[$"loss_cls_stage{k}"] * 2 * stage[k]), $"loss_cls_stage{k}");
            Assert.That(weighted[$"loss_box_reg_stage{k}"], Is.EqualTo(unweighted[$"loss_box_reg_stage{k}"] * 0.5 * stage[k]), $"loss_box_reg_stage{k}");
        }
        Assert.That(weighted["loss_mask"], Is.EqualTo(unweighted["loss_mask"] * 4));
        foreach (var key in unweighted.Keys.Where(k => !TrainingTerms.IsLoss(k)))
            Assert.That(weighted[key], Is.EqualTo(unweighted[key]), key);
    }

    /// <summary>rpn_loss_cls_weight and rpn_loss_bbox_weight multiply loss_rpn_cls and loss_rpn_loc apart (the same seeds otherwise).</summary>
    [Test]
    public void RpnLossWeightsMultiplyEachLossExactly()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        var features = new[] { 16L, 8, 4, 2, 1 }.Select(s => randn(new[] { 1, 8, s, s }, generator: gen)).ToArray();
        (double Objectness, double Box) Losses(RpnSettings settings)
        {
            using var rpn = new Rpn(8, AnchorGenerator.VitDetDefault(), settings with { PreNmsTopKTrain = 50, PostNmsTopKTrain = 20 }, seed: 3);
            rpn.train();
            var output = rpn.Forward(features, new (long, long)[] { (64, 64) }, new[] { B(4, 4, 30, 36) }, new Generator(7));
            return (output.ObjectnessLoss!.ToDouble(), output.BoxLoss!.ToDouble());
        }
        var unweighted = Losses(new RpnSettings());
        var weighted = Losses(new RpnSettings { ObjectnessLossWeight = 0.25, BoxLossWeight = 8 });
        Assert.That(unweighted.Box, Is.GreaterThan(0));
        Assert.That(weighted, Is.EqualTo((unweighted.Objectness * 0.25, unweighted.Box * 8)));
    }

    private static double Loss(BoxRegressionLossType type, double[] predicted, double[] target) =>
        BoxRegressionLoss.IouLossSum(type, tensor(predicted, ScalarType.Float64).view(-1, 4), tensor(target, ScalarType.Float64).view(-1, 4)).ToDouble();

    /// <summary>
    /// The IoU losses of box pairs worked out on paper (I intersection, U union, C the enclosing box's area, ρ² the centres'
    /// squared distance, c² the enclosing box's squared diagonal): GIoU 1 − I/U + (C − U)/C, DIoU 1 − I/U + ρ²/c², CIoU
    /// DIoU + α·v. Identical boxes cost 0; disjoint unit squares [0, 0, 1, 1] and [2, 0, 3, 1] have I 0, U 2, C 3 → GIoU
    /// 4/3, ρ² 4, c² 10 → DIoU 1.4; [0, 0, 2, 2] and [1, 0, 3, 2]: I 2, U 6, C 6 → 2/3, ρ² 1, c² 13 → 2/3 + 1/13; equal
    /// aspect ratios give v 0 (CIoU = DIoU). [0, 0, 4, 2] against [0, 0, 2, 2]: I 4, U 8, C 8 → GIoU 0.5, ρ² 1, c² 20 →
    /// DIoU 0.55, v = 4/π²·(atan 1 − atan 2)², α = v / (0.5 + v). Within ε = 1e-7 of fvcore's and detectron2's denominators.
    /// </summary>
    [TestCase(BoxRegressionLossType.Giou, new double[] { 0, 0, 2, 2 }, new double[] { 0, 0, 2, 2 }, 0.0)]
    [TestCase(BoxRegressionLossType.Diou, new double[] { 0, 0, 2, 2 }, new double[] { 0, 0, 2, 2 }, 0.0)]
    [TestCase(BoxRegressionLossType.Ciou, new double[] { 0, 0, 2, 2 }, new double[] { 0, 0, 2, 2 }, 0.0)]
    [TestCase(BoxRegressionLossType.Giou, new double[] { 0, 0, 1, 1 }, new double[] { 2, 0, 3, 1 }, 4.0 / 3)]
    [TestCase(BoxRegressionLossType.Diou, new double[] { 0, 0, 1, 1 }, new double[] { 2, 0, 3, 1 }, 1.4)]
    [TestCase(BoxRegressionLossType.Ciou, new double[] { 0, 0, 1, 1 }, new double[] { 2, 0, 3, 1 }, 1.4)]
    [TestCase(BoxRegressionLossType.Giou, new double[] { 0, 0, 2, 2 }, new double[] { 1, 0, 3, 2 }, 2.0 / 3)]
    [TestCase(BoxRegressionLossType.Diou, new double[] { 0, 0, 2, 2 }, new double[] { 1, 0, 3, 2 }, 2.0 / 3 + 1.0 / 13)]
    [TestCase(BoxRegressionLossType.Giou, new double[] { 0, 0, 4, 2 }, new double[] { 0, 0, 2, 2 }, 0.5)]
    [TestCase(BoxRegressionLossType.Diou, new double[] { 0, 0, 4, 2 }, new double[] { 0, 0, 2, 2 }, 0.55)]
    public void IouLossesOfHandComputedPairs(BoxRegressionLossType type, double[] predicted, double[] target, double expected)
    {
        using var scope = NewDisposeScope();
        Assert.That(Loss(type, predicted, target), Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void CiouAddsTheAspectTermAndSumsOverPairs()
    {
        using var scope = NewDisposeScope();
        double v = 4 / (Math.PI * Math.PI) * Math.Pow(Math.PI / 4 - Math.Atan(2), 2);
        double alpha = v / (1 - 0.5 + v);
        Assert.That(Loss(BoxRegressionLossType.Ciou, [0, 0, 4, 2], [0, 0, 2, 2]), Is.EqualTo(0.55 + alpha * v).Within(1e-6));
        // Summed over the rows (callers normalise): the disjoint and the overlapping pair together.
        Assert.That(Loss(BoxRegressionLossType.Giou, [0, 0, 1, 1, 0, 0, 2, 2], [2, 0, 3, 1, 1, 0, 3, 2]), Is.EqualTo(4.0 / 3 + 2.0 / 3).Within(1e-6));
    }

    /// <summary>
    /// The gradient of each IoU loss against central finite differences of the loss (float64, pairs away from ties of the
    /// min / max and the intersection's edge). CIoU's α is a constant of the backward pass (detectron2 computes it under
    /// no_grad), so its reference is the finite difference of DIoU + α₀·v with α₀ fixed at the point and v written out here.
    /// </summary>
    [TestCase(BoxRegressionLossType.Giou)]
    [TestCase(BoxRegressionLossType.Diou)]
    [TestCase(BoxRegressionLossType.Ciou)]
    public void IouLossGradientsMatchFiniteDifferences(BoxRegressionLossType type)
    {
        using var scope = NewDisposeScope();
        double[] point = [1.0, 2.0, 5.0, 7.0, 0.0, 0.5, 1.2, 3.0];
        double[] target = [2.0, 1.0, 6.5, 5.5, 4.0, 1.0, 6.0, 2.2];
        var gt = tensor(target, ScalarType.Float64).view(-1, 4);
        static double Aspect(double[] p, double[] t, int row)
        {
            int o = 4 * row;
            double d = Math.Atan((t[o + 2] - t[o]) / (t[o + 3] - t[o + 1])) - Math.Atan((p[o + 2] - p[o]) / (p[o + 3] - p[o + 1]));
            return 4 / (Math.PI * Math.PI) * d * d;
        }
        double[] alpha = new double[2];
        if (type == BoxRegressionLossType.Ciou)
            for (int row = 0; row < 2; row++)
            {
                double ciou = Loss(BoxRegressionLossType.Ciou, point[(4 * row)..(4 * row + 4)], target[(4 * row)..(4 * row + 4)]);
                double diou = Loss(BoxRegressionLossType.Diou, point[(4 * row)..(4 * row + 4)], target[(4 * row)..(4 * row + 4)]);
                double v = Aspect(point, target, row);
                alpha[row] = (ciou - diou) / v;
            }
        double Reference(double[] p) => type == BoxRegressionLossType.Ciou
            ? Loss(BoxRegressionLossType.Diou, p, target) + alpha[0] * Aspect(p, target, 0) + alpha[1] * Aspect(p, target, 1)
            : Loss(type, p, target);

        var leaf = tensor(point, ScalarType.Float64).view(-1, 4).requires_grad_(true);
        BoxRegressionLoss.IouLossSum(type, leaf, gt).backward();
        var gradient = leaf.grad!.flatten().data<double>().ToArray();
        const double h = 1e-6;
        for (int i = 0; i < point.Length; i++)
        {
            var up = (double[])point.Clone();
            var down = (double[])point.Clone();
            up[i] += h;
            down[i] -= h;
            Assert.That(gradient[i], Is.EqualTo((Reference(up) - Reference(down)) / (2 * h)).Within(1e-6), $"coordinate {i}");
        }
        Assert.That(gradient.Take(4).Any(g => Math.Abs(g) > 1e-3), Is.True, "the overlapping pair pulls its box");
    }

    /// <summary>
    /// An IoU box loss is taken on the decoded boxes and normalised as detectron2's: the box heads' over all sampled RoIs
    /// (box_reg_loss / max(R, 1)), the RPN's over rpn_batch_size_per_image × images. Zero deltas decode to the proposal
    /// itself: [0, 0, 2, 2] against ground truth [1, 0, 3, 2] is GIoU loss 2/3 (worked out above).
    /// </summary>
    [Test]
    public void IouBoxLossesTakeTheDecodedBoxesWithDetectron2sNormalisation()
    {
        using var scope = NewDisposeScope();
        using var predictor = new FastRcnnOutputLayers(4, 3, new Box2BoxTransform(10, 10, 5, 5), boxRegressionLoss: BoxRegressionLossType.Giou);
        // Two RoIs: one foreground (class 1), one background (class 3).
        var (_, box) = predictor.Losses(zeros(2, 4), zeros(2, 4), tensor(new float[] { 0, 0, 2, 2, 10, 10, 20, 20 }).view(2, 4),
            tensor(new long[] { 1, 3 }), tensor(new float[] { 1, 0, 3, 2, 0, 0, 0, 0 }).view(2, 4));
        Assert.That(box.ToDouble(), Is.EqualTo(2.0 / 3 / 2).Within(1e-6));

        using var rpn = new Rpn(8, AnchorGenerator.VitDetDefault(), new RpnSettings { BoxRegressionLoss = BoxRegressionLossType.Giou });
        var anchors = B(0, 0, 2, 2, 10, 10, 12, 12);
        var (_, rpnBox) = rpn.Losses(anchors, zeros(1, 2), zeros(1, 2, 4), new[] { tensor(new long[] { 1, 0 }) },
            new[] { tensor(new float[] { 1, 0, 3, 2, 0, 0, 0, 0 }).view(2, 4) });
        Assert.That(rpnBox.ToDouble(), Is.EqualTo(2.0 / 3 / 256).Within(1e-8));
    }

    /// <summary>
    /// Class-specific regression (cls_agnostic_bbox_reg false) decodes each foreground RoI's ground-truth class's deltas, with
    /// the stage's own box weights, as detectron2's box_reg_loss: weights (10, 10, 5, 5) make dx 5 a shift of half the width,
    /// so [0, 0, 2, 2] with class 1's deltas (5, 0, 0, 0) decodes to its ground truth [1, 0, 3, 2] (loss 0); the second RoI's
    /// class 0 deltas are 0, so it keeps [0, 0, 2, 2] against [1, 0, 3, 2] (GIoU loss 2/3); the third is background. The other
    /// classes' deltas (7s) are never decoded and get no gradient. Normalised by all three RoIs.
    /// </summary>
    [Test]
    public void ClassSpecificIouLossDecodesTheGroundTruthClassesDeltasWithTheStagesWeights()
    {
        using var scope = NewDisposeScope();
        using var predictor = new FastRcnnOutputLayers(4, 3, new Box2BoxTransform(10, 10, 5, 5), classAgnostic: false,
            boxRegressionLoss: BoxRegressionLossType.Giou);
        var deltas = full(3, 12, 7f);
        deltas[0, 4..8] = tensor(new float[] { 5, 0, 0, 0 });
        deltas[1, 0..4] = zeros(4);
        deltas.requires_grad_(true);
        var proposals = tensor(new float[] { 0, 0, 2, 2, 0, 0, 2, 2, 10, 10, 20, 20 }).view(3, 4);
        var gt = tensor(new float[] { 1, 0, 3, 2, 1, 0, 3, 2, 0, 0, 0, 0 }).view(3, 4);
        var (_, box) = predictor.Losses(zeros(3, 4), deltas, proposals, tensor(new long[] { 1, 0, 3 }), gt);
        Assert.That(box.ToDouble(), Is.EqualTo(2.0 / 3 / 3).Within(1e-6));
        box.backward();
        var grad = deltas.grad!;
        Assert.That(grad[0, 0..4].abs().sum().ToDouble() + grad[1, 4..12].abs().sum().ToDouble() + grad[2].abs().sum().ToDouble(),
            Is.EqualTo(0.0), "only each foreground RoI's own class's deltas are decoded");
        Assert.That(grad[1, 0..4].abs().sum().ToDouble(), Is.GreaterThan(0));
    }

    /// <summary>
    /// Decoding for an IoU loss clamps dw, dh at log(1000 / 16) as detectron2's apply_deltas: deltas (0, 0, 1000, 1000) on
    /// [0, 0, 2, 2] give a 125-pixel square centred on (1, 1) rather than an infinite box, so the GIoU loss against [0, 0, 2, 2]
    /// is 1 − 4 / 125² (the enclosing box is the prediction itself) and its gradient finite.
    /// </summary>
    [Test]
    public void IouLossDecodingClampsTheScale()
    {
        using var scope = NewDisposeScope();
        using var predictor = new FastRcnnOutputLayers(4, 3, new Box2BoxTransform(1, 1, 1, 1), boxRegressionLoss: BoxRegressionLossType.Giou);
        var deltas = tensor(new float[] { 0, 0, 1000, 1000 }).view(1, 4).requires_grad_(true);
        var (_, box) = predictor.Losses(zeros(1, 4), deltas, tensor(new float[] { 0, 0, 2, 2 }).view(1, 4), tensor(new long[] { 0 }),
            tensor(new float[] { 0, 0, 2, 2 }).view(1, 4));
        Assert.That(box.ToDouble(), Is.EqualTo(1 - 4.0 / (125 * 125)).Within(1e-6));
        box.backward();
        Assert.That(deltas.grad!.isfinite().all().ToBoolean(), Is.True);
    }

    /// <summary>
    /// Under autocast the heads' deltas are half: the IoU losses decode them in float32 (detectron2's apply_deltas does
    /// deltas.float()), so a 300-pixel box's area (90000, past float16's 65504) stays finite. [0, 0, 300, 300] against
    /// [100, 0, 400, 300]: I 60000, U = C = 120000, GIoU loss 0.5, for the box heads (over R = 1) and the RPN (over 256 × 2
    /// images, one positive anchor each: the second image's anchor is its ground truth, loss 0).
    /// </summary>
    [TestCase(ScalarType.Float16)]
    [TestCase(ScalarType.BFloat16)]
    public void IouLossesOfHalfDeltasAreComputedInFloat32(ScalarType half)
    {
        using var scope = NewDisposeScope();
        using var predictor = new FastRcnnOutputLayers(4, 3, new Box2BoxTransform(10, 10, 5, 5), boxRegressionLoss: BoxRegressionLossType.Giou);
        var (_, box) = predictor.Losses(zeros(1, 4), zeros(new long[] { 1, 4 }, half), tensor(new float[] { 0, 0, 300, 300 }).view(1, 4),
            tensor(new long[] { 2 }), tensor(new float[] { 100, 0, 400, 300 }).view(1, 4));
        Assert.That(box.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(box.ToDouble(), Is.EqualTo(0.5).Within(1e-6));

        using var rpn = new Rpn(8, AnchorGenerator.VitDetDefault(), new RpnSettings { BoxRegressionLoss = BoxRegressionLossType.Giou });
        var (_, rpnBox) = rpn.Losses(B(0, 0, 300, 300), zeros(2, 1), zeros(new long[] { 2, 1, 4 }, half),
            new[] { tensor(new long[] { 1 }), tensor(new long[] { 1 }) },
            new[] { tensor(new float[] { 100, 0, 400, 300 }).view(1, 4), tensor(new float[] { 0, 0, 300, 300 }).view(1, 4) });
        Assert.That(rpnBox.ToDouble(), Is.EqualTo(0.5 / (256 * 2)).Within(1e-9));
    }

    /// <summary>
    /// A checkpoint trained with other anchors has RPN head outputs of another shape (3 anchors per location against 1):
    /// `vim test` and `--resume` refuse it naming those tensors' shapes and the anchor keys the checkpoint was trained with,
    /// since its task, backbone and class count are the same as the config's and would not tell the user what to change.
    /// </summary>
    [Test]
    public void ACheckpointOfOtherAnchorsIsRefusedNamingTheAnchorKeysItWasTrainedWith()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(Path.GetTempPath(), $"vimdense-dethp-{Guid.NewGuid():N}.safetensors");
        try
        {
            var trained = Config();
            using (var model = DetectionTask.FromConfig(trained))
            {
                var optimizer = new AdamWOptimizer([new ParameterGroup("all", model.named_parameters().ToList(), 0.0, 1.0)]);
                TrainingCheckpoint.Save(path, model, optimizer, null,
                    new TrainingState(1, 1, DataPosition.Start, null, ConfigWriter.ToYaml(ConfigBinder.ToNode(trained))));
            }
            using var other = DetectionTask.FromConfig(Config(head => head.RpnAnchorAspectRatios = [1]));
            var error = Assert.Throws<VimException>(() => TrainingCheckpoint.LoadWeights(other, path, ema: false))!;
            Assert.That(error.Message, Does.Contain("[3, ").And.Contain("in the checkpoint, [1, "));
            Assert.That(error.Message, Does.Contain("model.det_head.rpn_anchor_aspect_ratios: [0.5, 1, 2]"));
            Assert.That(error.Message, Does.Contain("model.det_head.rpn_anchor_sizes: [[32], [64], [128], [256], [512]]"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Unusable values are refused by key, with what was expected and what was given, before the detector is built.</summary>
    [TestCase("rpn_iou_thresholds", "model.det_head.rpn_iou_thresholds must be [negative, positive], two IoUs within [0, 1] with negative <= positive (e.g. [0.3, 0.7]), got [0.7, 0.3]")]
    [TestCase("rpn_iou_thresholds_count", "model.det_head.rpn_iou_thresholds must be [negative, positive], two IoUs within [0, 1] with negative <= positive (e.g. [0.3, 0.7]), got [0.5]")]
    [TestCase("rpn_positive_fraction", "model.det_head.rpn_positive_fraction must be within (0, 1] (the most positives among the sampled, e.g. 0.5 for the RPN, 0.25 for the RoIs), got 0")]
    [TestCase("roi_positive_fraction", "model.det_head.roi_positive_fraction must be within (0, 1] (the most positives among the sampled, e.g. 0.5 for the RPN, 0.25 for the RoIs), got 1.5")]
    [TestCase("rpn_nms_threshold", "model.det_head.rpn_nms_threshold must be within [0, 1], got 1.1")]
    [TestCase("roi_smooth_l1_beta", "model.det_head.roi_smooth_l1_beta must be a finite number >= 0, got -1")]
    [TestCase("rpn_loss_bbox_weight", "model.det_head.rpn_loss_bbox_weight must be a finite number >= 0, got -0.5")]
    [TestCase("mask_loss_weight", "model.det_head.mask_loss_weight must be a finite number >= 0, got NaN")]
    [TestCase("stage_loss_weights", "model.det_head.stage_loss_weights has 2 weight(s) and model.det_head.stage_iou_thresholds 3 stage(s); give one weight per stage (e.g. [1, 0.5, 0.25], mmdet's, for three stages) or null for all 1s")]
    [TestCase("stage_loss_weights_negative", "model.det_head.stage_loss_weights must hold finite weights >= 0 (e.g. [1, 0.5, 0.25]), got [1, -0.5, 0.25]")]
    [TestCase("box_pooler_resolution", "model.det_head.box_pooler_resolution must be at least 1, got 0")]
    [TestCase("pooler_sampling_ratio", "model.det_head.pooler_sampling_ratio must be 0 (adaptive) or a positive count of samples per bin side, got -1")]
    [TestCase("rpn_anchor_sizes", "model.det_head.rpn_anchor_sizes must hold one list of positive sizes per pyramid level p2–p6 (5), each as long (e.g. [[32], [64], [128], [256], [512]]), got [[32], [64]]")]
    [TestCase("rpn_anchor_aspect_ratios", "model.det_head.rpn_anchor_aspect_ratios must be a non-empty list of positive height / width ratios (e.g. [0.5, 1, 2]), got [0.5, 0]")]
    public void UnusableValuesAreRefusedByKey(string key, string expected)
    {
        var config = Config(head =>
        {
            switch (key)
            {
                case "rpn_iou_thresholds": head.RpnIouThresholds = [0.7, 0.3]; break;
                case "rpn_iou_thresholds_count": head.RpnIouThresholds = [0.5]; break;
                case "rpn_positive_fraction": head.RpnPositiveFraction = 0; break;
                case "roi_positive_fraction": head.RoiPositiveFraction = 1.5; break;
                case "rpn_nms_threshold": head.RpnNmsThreshold = 1.1; break;
                case "roi_smooth_l1_beta": head.RoiSmoothL1Beta = -1; break;
                case "rpn_loss_bbox_weight": head.RpnLossBboxWeight = -0.5; break;
                case "mask_loss_weight": head.MaskLossWeight = double.NaN; break;
                case "stage_loss_weights": head.StageLossWeights = [1, 0.5]; break;
                case "stage_loss_weights_negative": head.StageLossWeights = [1, -0.5, 0.25]; break;
                case "box_pooler_resolution": head.BoxPoolerResolution = 0; break;
                case "pooler_sampling_ratio": head.PoolerSamplingRatio = -1; break;
                case "rpn_anchor_sizes": head.RpnAnchorSizes = [[32], [64]]; break;
                case "rpn_anchor_aspect_ratios": head.RpnAnchorAspectRatios = [0.5, 0]; break;
                default: throw new ArgumentException(key);
            }
        });
        var error = Assert.Throws<VimException>(() => DetectionTask.FromConfig(config).Dispose())!;
        Assert.That(error.Message, Is.EqualTo(expected));
    }

    /// <summary>
    /// The keys come from YAML as mmdet's names suggest; an unknown loss type is refused naming the key and the choices, an
    /// unusable value naming the file and line (or the --set) that wrote it.
    /// </summary>
    [Test]
    public void KeysBindFromYamlAndBadValuesAreRefusedWhereWritten()
    {
        var file = Path.Combine(Path.GetTempPath(), $"vimdense-dethp-{Guid.NewGuid():N}.yaml");
        try
        {
            File.WriteAllText(file, "task: detection\nmodel:\n  backbone:\n    name: vimdet_tiny\n  det_head:\n    stage_loss_weights: [1, 0.5, 0.25]\n" +
                "    rpn_iou_thresholds: [0.4, 0.6]\n    roi_bbox_reg_loss_type: ciou\n    rpn_loss_cls_weight: 2\n");
            var (config, _) = ExperimentConfig.Load(file, []);
            var head = config.Model.DetHead;
            Assert.That(head.StageLossWeights, Is.EqualTo(new[] { 1, 0.5, 0.25 }));
            Assert.That(head.RpnIouThresholds, Is.EqualTo(new[] { 0.4, 0.6 }));
            Assert.That((head.RoiBboxRegLossType, head.RpnBboxRegLossType, head.RpnLossClsWeight), Is.EqualTo((BoxRegressionLossType.Ciou, BoxRegressionLossType.SmoothL1, 2.0)));
            var error = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["model.det_head.rpn_bbox_reg_loss_type=iou"]))!;
            Assert.That(error.Message, Does.Contain("model.det_head.rpn_bbox_reg_loss_type").And.Contain("smooth_l1, giou, diou, ciou"));

            // Unusable values are refused when the config is read (vim config show, vim train), at the line that wrote them.
            error = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["model.det_head.stage_iou_thresholds=[0.5, 0.6]"]))!;
            Assert.That(error.Message, Does.Match($@"{Path.GetFileName(file)}:6: model\.det_head\.stage_loss_weights has 3 weight\(s\) and model\.det_head\.stage_iou_thresholds 2 stage\(s\)"));
            error = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["model.det_head.rpn_iou_thresholds=[0.7, 0.3]"]))!;
            Assert.That(error.Message, Does.StartWith("--set model.det_head.rpn_iou_thresholds=[0.7, 0.3]: model.det_head.rpn_iou_thresholds must be [negative, positive]"));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
