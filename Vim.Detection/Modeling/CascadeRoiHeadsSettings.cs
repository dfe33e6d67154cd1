using Vim.Core.Config;
using Vim.Detection.Ops;

namespace Vim.Detection.Modeling;

/// <summary>
/// Cascade Mask R-CNN ROI-head settings; defaults are ViTDet's (section c.1): 3 stages matched at
/// IoU 0.5 / 0.6 / 0.7 without low-quality matches, box-coder weights ×1 / ×2 / ×3 of (10, 10, 5, 5), class-agnostic
/// box regression,
/// 512 RoIs per image at 25 % positives with the ground truth appended to the proposals, 4 × 256
/// conv + 1024 FC box heads, 7×7 box / 14×14 mask pooling on p2–p5 (ROIAlignV2, adaptive
/// sampling), L1 box loss, every loss weighted 1 and the stages summed unweighted (detectron2's), and at test time score > 0.05, per-class NMS 0.5, 100 detections.
/// </summary>
public sealed record CascadeRoiHeadsSettings
{
    public long NumClasses { get; init; } = 80;
    public IReadOnlyList<double> StageIouThresholds { get; init; } = new[] { 0.5, 0.6, 0.7 };

    public IReadOnlyList<(double X, double Y, double W, double H)> StageBoxWeights { get; init; } =
        new[] { (10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0) };

    /// <summary>
    /// One set of box deltas per RoI (the cascade's) rather than one per class (detectron2's StandardROIHeads default and
    /// mmdet's reg_class_agnostic=False: Mask R-CNN with one stage at IoU 0.5 and weights (10, 10, 5, 5)).
    /// </summary>
    public bool ClassAgnosticBoxRegression { get; init; } = true;

    public long BatchSizePerImage { get; init; } = 512;
    public double PositiveFraction { get; init; } = 0.25;
    public bool ProposalAppendGt { get; init; } = true;

    /// <summary>Spatial scales of the pooled levels, finest first (p2–p5).</summary>
    public IReadOnlyList<double> PoolerScales { get; init; } = new[] { 1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32 };

    public long BoxPoolerResolution { get; init; } = 7;
    public long MaskPoolerResolution { get; init; } = 14;
    public int PoolerSamplingRatio { get; init; }
    public IReadOnlyList<long> BoxHeadConvDims { get; init; } = new long[] { 256, 256, 256, 256 };
    public IReadOnlyList<long> BoxHeadFcDims { get; init; } = new long[] { 1024 };

    /// <summary>Widths of the mask head's 3×3 convs followed by the deconv's.</summary>
    public IReadOnlyList<long> MaskHeadConvDims { get; init; } = new long[] { 256, 256, 256, 256, 256 };

    public bool MaskOn { get; init; } = true;
    public double SmoothL1Beta { get; init; }

    /// <summary>Smooth-L1 on the deltas, or an IoU loss on the decoded boxes (detectron2's ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE).</summary>
    public BoxRegressionLossType BoxRegressionLoss { get; init; } = BoxRegressionLossType.SmoothL1;

    /// <summary>Factor of each stage's classification loss (mmdet's bbox_head.loss_cls.loss_weight).</summary>
    public double ClassificationLossWeight { get; init; } = 1.0;

    /// <summary>Factor of each stage's box loss (mmdet's bbox_head.loss_bbox.loss_weight; detectron2's BBOX_REG_LOSS_WEIGHT).</summary>
    public double BoxLossWeight { get; init; } = 1.0;

    /// <summary>Factor of the mask loss (mmdet's mask_head.loss_mask.loss_weight).</summary>
    public double MaskLossWeight { get; init; } = 1.0;

    /// <summary>
    /// One factor per stage on that stage's classification and box losses (mmdet's CascadeRoIHead stage_loss_weights);
    /// null: every stage 1, as detectron2's CascadeROIHeads sums them.
    /// </summary>
    public IReadOnlyList<double>? StageLossWeights { get; init; }

    public double TestScoreThreshold { get; init; } = 0.05;
    public double TestNmsThreshold { get; init; } = 0.5;

    /// <summary>Soft-NMS instead of hard NMS at <see cref="TestNmsThreshold"/> for the final per-class NMS; null: hard NMS.</summary>
    public SoftNmsSettings? TestSoftNms { get; init; }
    public long DetectionsPerImage { get; init; } = 100;
}
