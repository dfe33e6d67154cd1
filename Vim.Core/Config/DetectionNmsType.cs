namespace Vim.Core.Config;

/// <summary>
/// How a per-class box NMS treats a box that overlaps a better one of its class: the detector's final NMS
/// (model.det_head.test_nms_type, mmdet's test_cfg.rcnn.nms.type) and test-time augmentation's merge
/// (model.det_test.nms_type, mmdet's tta_cfg.nms.type).
/// </summary>
public enum DetectionNmsType
{
    /// <summary>Hard NMS: the box is dropped when its IoU is above the threshold.</summary>
    [ConfigKey("nms")]
    Nms,

    /// <summary>Soft-NMS (Bodla et al. 2017, as mmcv's soft_nms): the box's score is decayed by its overlap, and the box dropped only below a minimum score.</summary>
    [ConfigKey("soft_nms")]
    SoftNms,
}
