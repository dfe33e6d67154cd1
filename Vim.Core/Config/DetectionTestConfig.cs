namespace Vim.Core.Config;

/// <summary>
/// Test-time augmentation of a detector (task: detection), detectron2's GeneralizedRCNNWithTTA with mmdet's DetTTAModel
/// settings: every pass's boxes mapped back to the original image, merged per class by NMS (hard, or Soft-NMS as mmdet's
/// tta_cfg.nms.type allows); masks re-predicted on the merged boxes in every pass and averaged. The defaults are one plain
/// pass, today's prediction unchanged.
/// </summary>
public sealed class DetectionTestConfig
{
    /// <summary>Also predict on the horizontally flipped image (`vim test --tta` turns it on).</summary>
    public bool Flip { get; set; }

    /// <summary>
    /// Ratios of the test size data.crop_size: each resizes the original image so its long side fits crop_size × ratio
    /// (truncated to whole pixels), as the LSJ test resize does at 1.0.
    /// </summary>
    public List<double> Scales { get; set; } = [1.0];

    /// <summary>
    /// IoU above which a merged box of a class suppresses a lower-scoring one of the same class (mmdet's
    /// tta_cfg.nms.iou_threshold); with Soft-NMS's linear decay, the IoU from which a score decays.
    /// </summary>
    public double NmsIou { get; set; } = 0.5;

    /// <summary>The merge's per-class NMS (mmdet's tta_cfg.nms.type): hard NMS, or Soft-NMS with the settings below.</summary>
    public DetectionNmsType NmsType { get; set; } = DetectionNmsType.Nms;

    /// <summary>Soft-NMS's score decay in the merge (read with nms_type: soft_nms; mmcv's default, linear).</summary>
    public SoftNmsMethod SoftNmsMethod { get; set; } = SoftNmsMethod.Linear;

    /// <summary>σ of the merge's gaussian decay exp(−IoU² / σ) (mmcv's sigma).</summary>
    public double SoftNmsSigma { get; set; } = 0.5;

    /// <summary>A merged box whose decayed score falls below this is dropped (mmcv's min_score).</summary>
    public double SoftNmsMinScore { get; set; } = 1e-3;

    /// <summary>Detections kept per image after the merge (mmdet's tta_cfg.max_per_img).</summary>
    public int MaxPerImg { get; set; } = 100;
}
