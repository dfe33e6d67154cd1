namespace Vim.Core.Config;

/// <summary>
/// The box-regression loss of the RPN or the box heads, detectron2's BBOX_REG_LOSS_TYPE: smooth-L1 on the deltas, or an
/// IoU-based loss on the boxes the deltas decode to (mmdet's reg_decoded_bbox=True with GIoULoss, DIoULoss, CIoULoss).
/// </summary>
public enum BoxRegressionLossType
{
    /// <summary>Smooth-L1 of the predicted against the target deltas with the section's β (β 0: L1).</summary>
    [ConfigKey("smooth_l1")]
    SmoothL1,

    /// <summary>1 − GIoU of the decoded and the ground-truth box (fvcore's giou_loss).</summary>
    [ConfigKey("giou")]
    Giou,

    /// <summary>1 − IoU plus the squared centre distance over the enclosing box's squared diagonal (detectron2's diou_loss).</summary>
    [ConfigKey("diou")]
    Diou,

    /// <summary>DIoU plus the aspect-ratio term α·v (detectron2's ciou_loss).</summary>
    [ConfigKey("ciou")]
    Ciou,
}
