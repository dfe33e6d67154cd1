namespace Vim.Core.Config;

/// <summary>The score decay of Soft-NMS, mmcv's soft_nms method.</summary>
public enum SoftNmsMethod
{
    /// <summary>A score s becomes s · (1 − IoU) when the IoU reaches the NMS threshold, and stays s below it.</summary>
    [ConfigKey("linear")]
    Linear,

    /// <summary>A score s becomes s · exp(−IoU² / σ) whatever the IoU; the NMS threshold plays no part.</summary>
    [ConfigKey("gaussian")]
    Gaussian,
}
