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

    /// <summary>RoIs sampled per image for the box heads (25% positives).</summary>
    public int RoiBatchSizePerImage { get; set; } = 512;

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
}
