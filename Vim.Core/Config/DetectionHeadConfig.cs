namespace Vim.Core.Config;

/// <summary>RPN and cascade ROI heads of Cascade Mask R-CNN (defaults: the official ViTDet-style setup).</summary>
public sealed class DetectionHeadConfig
{
    public int RpnBatchSizePerImage { get; set; } = 256;

    public int RpnPreNmsTopkTrain { get; set; } = 2000;

    public int RpnPostNmsTopkTrain { get; set; } = 1000;

    public int RpnPreNmsTopkTest { get; set; } = 1000;

    public int RpnPostNmsTopkTest { get; set; } = 1000;

    /// <summary>RoIs sampled per image for the box heads (25% positives).</summary>
    public int RoiBatchSizePerImage { get; set; } = 512;

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
