using System.Globalization;

namespace Vim.Core.Config;

/// <summary>
/// RPN and ROI heads of the detector (defaults: the official ViTDet-style Cascade Mask R-CNN). One box stage at IoU 0.5
/// with weights (10, 10, 5, 5) and class-specific regression is Mask R-CNN (ViTDet's mask_rcnn_vitdet_b_100ep.py,
/// mmdet's mask_rcnn_r50_fpn); without the mask head, Faster R-CNN.
/// </summary>
public sealed class DetectionHeadConfig
{
    public int RpnBatchSizePerImage { get; set; } = 256;

    public int RpnPreNmsTopkTrain { get; set; } = 2000;

    public int RpnPostNmsTopkTrain { get; set; } = 1000;

    public int RpnPreNmsTopkTest { get; set; } = 1000;

    public int RpnPostNmsTopkTest { get; set; } = 1000;

    /// <summary>
    /// [negative, positive]: an anchor whose best IoU with the ground truth is below the first is background, at or above the
    /// second foreground, between them ignored (mmdet's train_cfg.rpn.assigner neg_iou_thr / pos_iou_thr; detectron2's
    /// RPN.IOU_THRESHOLDS); every ground-truth box also keeps its best anchors (low-quality matches).
    /// </summary>
    public List<double> RpnIouThresholds { get; set; } = [0.3, 0.7];

    /// <summary>The most positives among the sampled anchors, as a fraction of rpn_batch_size_per_image (mmdet's sampler.pos_fraction).</summary>
    public double RpnPositiveFraction { get; set; } = 0.5;

    /// <summary>IoU of the RPN's per-level NMS of proposals, training and test (mmdet's rpn_proposal.nms.iou_threshold).</summary>
    public double RpnNmsThreshold { get; set; } = 0.7;

    /// <summary>Proposals not wider and taller than this many input pixels are dropped before NMS (mmdet's rpn_proposal.min_bbox_size).</summary>
    public double RpnMinBoxSize { get; set; }

    /// <summary>The RPN's box loss: smooth_l1 (on deltas), giou, diou or ciou (on decoded boxes; detectron2's RPN.BBOX_REG_LOSS_TYPE).</summary>
    public BoxRegressionLossType RpnBboxRegLossType { get; set; } = BoxRegressionLossType.SmoothL1;

    /// <summary>β of the RPN's smooth-L1 box loss; 0 is L1 (detectron2's RPN.SMOOTH_L1_BETA).</summary>
    public double RpnSmoothL1Beta { get; set; }

    /// <summary>Factor of loss_rpn_cls (mmdet's rpn_head.loss_cls.loss_weight; detectron2's RPN.LOSS_WEIGHT).</summary>
    public double RpnLossClsWeight { get; set; } = 1.0;

    /// <summary>Factor of loss_rpn_loc (mmdet's rpn_head.loss_bbox.loss_weight; detectron2's RPN.LOSS_WEIGHT × RPN.BBOX_REG_LOSS_WEIGHT).</summary>
    public double RpnLossBboxWeight { get; set; } = 1.0;

    /// <summary>Anchor sizes in input pixels, one list per pyramid level p2–p6, each as long (detectron2's ANCHOR_GENERATOR.SIZES).</summary>
    public List<List<double>> RpnAnchorSizes { get; set; } = [[32], [64], [128], [256], [512]];

    /// <summary>Anchor aspect ratios height / width (detectron2's ANCHOR_GENERATOR.ASPECT_RATIOS; mmdet's anchor_generator.ratios).</summary>
    public List<double> RpnAnchorAspectRatios { get; set; } = [0.5, 1.0, 2.0];

    /// <summary>RoIs sampled per image for the box heads (25% positives).</summary>
    public int RoiBatchSizePerImage { get; set; } = 512;

    /// <summary>The most foreground RoIs among the sampled, as a fraction of roi_batch_size_per_image (mmdet's rcnn sampler.pos_fraction).</summary>
    public double RoiPositiveFraction { get; set; } = 0.25;

    /// <summary>The ground-truth boxes join the proposals before the RoIs are sampled (mmdet's sampler.add_gt_as_proposals; detectron2's PROPOSAL_APPEND_GT).</summary>
    public bool RoiProposalAppendGt { get; set; } = true;

    /// <summary>Side of the box heads' RoIAlign output (mmdet's bbox_roi_extractor.roi_layer.output_size).</summary>
    public int BoxPoolerResolution { get; set; } = 7;

    /// <summary>Side of the mask head's RoIAlign output; its masks are twice this (mmdet's mask_roi_extractor.roi_layer.output_size).</summary>
    public int MaskPoolerResolution { get; set; } = 14;

    /// <summary>RoIAlign samples per bin side; 0 is adaptive, ⌈bin size⌉ (mmdet's roi_layer.sampling_ratio; detectron2's POOLER_SAMPLING_RATIO).</summary>
    public int PoolerSamplingRatio { get; set; }

    /// <summary>The box heads' box loss: smooth_l1 (on deltas), giou, diou or ciou (on decoded boxes; detectron2's ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE).</summary>
    public BoxRegressionLossType RoiBboxRegLossType { get; set; } = BoxRegressionLossType.SmoothL1;

    /// <summary>β of the box heads' smooth-L1 box loss; 0 is L1 (detectron2's ROI_BOX_HEAD.SMOOTH_L1_BETA).</summary>
    public double RoiSmoothL1Beta { get; set; }

    /// <summary>Factor of every stage's classification loss (mmdet's bbox_head.loss_cls.loss_weight).</summary>
    public double RoiLossClsWeight { get; set; } = 1.0;

    /// <summary>Factor of every stage's box loss (mmdet's bbox_head.loss_bbox.loss_weight; detectron2's ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT).</summary>
    public double RoiLossBboxWeight { get; set; } = 1.0;

    /// <summary>Factor of loss_mask (mmdet's mask_head.loss_mask.loss_weight).</summary>
    public double MaskLossWeight { get; set; } = 1.0;

    /// <summary>
    /// One factor per box stage on its loss_cls and loss_box_reg (mmdet's CascadeRoIHead stage_loss_weights, [1, 0.5, 0.25]
    /// in mmdet's cascade configs); null, the default: every stage 1, as detectron2's CascadeROIHeads sums them. The one mask
    /// head's loss takes no stage weight.
    /// </summary>
    public List<double>? StageLossWeights { get; set; }

    /// <summary>
    /// One box stage per entry, each matching its proposals as foreground at this IoU (detectron2's
    /// ROI_BOX_CASCADE_HEAD.IOUS; one entry: ROI_HEADS.IOU_THRESHOLDS of a plain Mask R-CNN).
    /// </summary>
    public List<double> StageIouThresholds { get; set; } = [0.5, 0.6, 0.7];

    /// <summary>Each stage's box-coder weights [wx, wy, ww, wh] (detectron2's ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS).</summary>
    public List<List<double>> StageBoxWeights { get; set; } = [[10, 10, 5, 5], [20, 20, 10, 10], [30, 30, 15, 15]];

    /// <summary>
    /// One set of box deltas per RoI (the cascade's) rather than one per class (false: detectron2's CLS_AGNOSTIC_BBOX_REG
    /// default and mmdet's reg_class_agnostic=False, as Mask R-CNN trains).
    /// </summary>
    public bool ClsAgnosticBboxReg { get; set; } = true;

    public List<int> BoxHeadConvDims { get; set; } = [256, 256, 256, 256];

    public List<int> BoxHeadFcDims { get; set; } = [1024];

    public bool MaskOn { get; set; } = true;

    /// <summary>Mask head: four 3×3 convs and the deconv.</summary>
    public List<int> MaskHeadConvDims { get; set; } = [256, 256, 256, 256, 256];

    public double TestScoreThreshold { get; set; } = 0.05;

    /// <summary>The IoU of the final per-class NMS: above it hard NMS drops a box; from it on linear Soft-NMS decays its score.</summary>
    public double TestNmsThreshold { get; set; } = 0.5;

    /// <summary>The final per-class NMS of the box head (mmdet's test_cfg.rcnn.nms.type); the RPN's NMS stays hard NMS.</summary>
    public DetectionNmsType TestNmsType { get; set; } = DetectionNmsType.Nms;

    /// <summary>Soft-NMS's score decay (read with test_nms_type: soft_nms; mmcv's default, linear).</summary>
    public SoftNmsMethod TestSoftNmsMethod { get; set; } = SoftNmsMethod.Linear;

    /// <summary>σ of the gaussian decay exp(−IoU² / σ) (mmcv's sigma).</summary>
    public double TestSoftNmsSigma { get; set; } = 0.5;

    /// <summary>A box whose decayed score falls below this is dropped (mmcv's min_score).</summary>
    public double TestSoftNmsMinScore { get; set; } = 1e-3;

    public int DetectionsPerImage { get; set; } = 100;

    /// <summary>
    /// Refuses RPN and RoI-head hyper-parameters mmdet or detectron2 would reject, naming the key, what it takes and what it
    /// got: IoU thresholds [negative ≤ positive] in [0, 1], NMS IoU in [0, 1], sampling fractions in (0, 1], β, minimum size
    /// and loss weights finite and ≥ 0, one stage loss weight per stage, anchors of five levels, positive pooler sizes.
    /// </summary>
    /// <param name="where">Where a key of model.det_head was written ("file:line", "--set …"), null where it was not
    /// (defaults, configs built in code): the message then starts with the key.</param>
    public void CheckHyperParameters(Func<string, string?>? where = null)
    {
        void Refuse(string key, string message)
        {
            var source = where?.Invoke(key);
            throw new VimException($"{(source is null ? "" : source + ": ")}model.det_head.{key} {message}");
        }
        static string Number(double value) => value.ToString(CultureInfo.InvariantCulture);
        static string List(IEnumerable<double> values) => $"[{string.Join(", ", values.Select(Number))}]";
        static bool FiniteNonNegative(double value) => value >= 0 && !double.IsPositiveInfinity(value);

        if (RpnIouThresholds.Count != 2 || RpnIouThresholds.Any(t => !(t >= 0 && t <= 1)) || RpnIouThresholds[0] > RpnIouThresholds[1])
            Refuse("rpn_iou_thresholds", $"must be [negative, positive], two IoUs within [0, 1] with negative <= positive (e.g. [0.3, 0.7]), got {List(RpnIouThresholds)}");
        if (!(RpnNmsThreshold >= 0 && RpnNmsThreshold <= 1))
            Refuse("rpn_nms_threshold", $"must be within [0, 1], got {Number(RpnNmsThreshold)}");
        foreach (var (key, value) in new[] { ("rpn_positive_fraction", RpnPositiveFraction), ("roi_positive_fraction", RoiPositiveFraction) })
            if (!(value > 0 && value <= 1))
                Refuse(key, $"must be within (0, 1] (the most positives among the sampled, e.g. 0.5 for the RPN, 0.25 for the RoIs), got {Number(value)}");
        foreach (var (key, value) in new[]
        {
            ("rpn_min_box_size", RpnMinBoxSize), ("rpn_smooth_l1_beta", RpnSmoothL1Beta), ("roi_smooth_l1_beta", RoiSmoothL1Beta),
            ("rpn_loss_cls_weight", RpnLossClsWeight), ("rpn_loss_bbox_weight", RpnLossBboxWeight),
            ("roi_loss_cls_weight", RoiLossClsWeight), ("roi_loss_bbox_weight", RoiLossBboxWeight), ("mask_loss_weight", MaskLossWeight),
        })
            if (!FiniteNonNegative(value))
                Refuse(key, $"must be a finite number >= 0, got {Number(value)}");
        if (StageLossWeights is { } stageWeights)
        {
            if (stageWeights.Count != StageIouThresholds.Count)
                Refuse("stage_loss_weights", $"has {stageWeights.Count} weight(s) and model.det_head.stage_iou_thresholds {StageIouThresholds.Count} stage(s); " +
                    "give one weight per stage (e.g. [1, 0.5, 0.25], mmdet's, for three stages) or null for all 1s");
            if (!stageWeights.All(FiniteNonNegative))
                Refuse("stage_loss_weights", $"must hold finite weights >= 0 (e.g. [1, 0.5, 0.25]), got {List(stageWeights)}");
        }
        if (RpnAnchorSizes.Count != 5 || RpnAnchorSizes.Any(level => level.Count == 0 || level.Count != RpnAnchorSizes[0].Count || level.Any(s => !(s > 0) || double.IsPositiveInfinity(s))))
            Refuse("rpn_anchor_sizes", "must hold one list of positive sizes per pyramid level p2–p6 (5), each as long " +
                $"(e.g. [[32], [64], [128], [256], [512]]), got [{string.Join(", ", RpnAnchorSizes.Select(List))}]");
        if (RpnAnchorAspectRatios.Count == 0 || RpnAnchorAspectRatios.Any(r => !(r > 0) || double.IsPositiveInfinity(r)))
            Refuse("rpn_anchor_aspect_ratios", $"must be a non-empty list of positive height / width ratios (e.g. [0.5, 1, 2]), got {List(RpnAnchorAspectRatios)}");
        foreach (var (key, value) in new[] { ("box_pooler_resolution", BoxPoolerResolution), ("mask_pooler_resolution", MaskPoolerResolution) })
            if (value < 1)
                Refuse(key, $"must be at least 1, got {value}");
        if (PoolerSamplingRatio < 0)
            Refuse("pooler_sampling_ratio", $"must be 0 (adaptive) or a positive count of samples per bin side, got {PoolerSamplingRatio}");
    }
}
