namespace Vim.Core.Config;

/// <summary>One entry of model.seg_head.losses (one of mmseg's loss_decode dicts).</summary>
public sealed class SegmentationLossConfig
{
    /// <summary>Which loss; required (null is refused, naming the entry).</summary>
    public SegmentationLossKind? Type { get; set; }

    /// <summary>Multiplies the loss (mmseg's loss_weight); 0 logs it without training on it.</summary>
    public double Weight { get; set; } = 1.0;
}
