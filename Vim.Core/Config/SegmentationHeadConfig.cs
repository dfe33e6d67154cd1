namespace Vim.Core.Config;

/// <summary>The UperNet decode head and FCN auxiliary head of a segmentation model.</summary>
public sealed class SegmentationHeadConfig
{
    /// <summary>Decode-head width: 192 for Vim-Ti, 384 for Vim-S (the official configs).</summary>
    public int Channels { get; set; } = 192;

    public List<int> PoolScales { get; set; } = [1, 2, 3, 6];

    public double DropoutRatio { get; set; } = 0.1;

    /// <summary>
    /// The decode head's one loss (the shorthand of <see cref="Losses"/>); null: unset, which means cross_entropy unless
    /// losses lists the losses. The auxiliary head computes the same loss.
    /// </summary>
    public SegmentationLossKind? Loss { get; set; }

    /// <summary>The weight of <see cref="Loss"/>; null: unset, which means 1.</summary>
    public double? LossWeight { get; set; }

    /// <summary>
    /// Several decode losses on the same logits, each weighted and logged under its own name, summed into the objective
    /// (mmseg's loss_decode list); null: the one loss of loss / loss_weight. Setting both forms is refused. The auxiliary
    /// head computes the first listed loss, weighted auxiliary_loss_weight.
    /// </summary>
    public List<SegmentationLossConfig>? Losses { get; set; }

    /// <summary>Pixel sampling for the decode head's cross-entropy (mmseg's decode_head sampler); null: every pixel counts.</summary>
    public SegmentationSamplerConfig? Sampler { get; set; }

    /// <summary>Per-class loss weights (cross-entropy only); empty for none.</summary>
    public List<double> ClassWeights { get; set; } = [];

    /// <summary>Average the cross-entropy over labelled pixels only (mmseg 0.x, the official setup, averages over all).</summary>
    public bool AverageOverNonIgnored { get; set; }

    /// <summary>Auxiliary FCN head on one pyramid level; channels 0 disables it.</summary>
    public int AuxiliaryChannels { get; set; } = 256;

    /// <summary>Pyramid level the auxiliary head reads (2 = stride 16).</summary>
    public int AuxiliaryInIndex { get; set; } = 2;

    public double AuxiliaryLossWeight { get; set; } = 0.4;

    public int IgnoreIndex { get; set; } = 255;

    /// <summary>
    /// Norm of the heads' conv blocks and of the neck's fpn1 (as the official configs set both): bn (per-rank statistics)
    /// or syncbn (global-batch statistics in data-parallel training).
    /// </summary>
    public NormKind Norm { get; set; } = NormKind.BatchNorm;

    /// <summary>
    /// A copy with loss: cross_entropy and loss_weight: 1 read as unset, which they mean: every config.yaml written before
    /// the shorthand's default became null spells them out, in a detection run's too, and must still read as the defaults.
    /// </summary>
    public SegmentationHeadConfig WithSpelledOutDefaultLossUnset()
    {
        var copy = (SegmentationHeadConfig)MemberwiseClone();
        if (Losses is null && Loss == SegmentationLossKind.CrossEntropy && LossWeight == 1.0)
        {
            copy.Loss = null;
            copy.LossWeight = null;
        }
        return copy;
    }
}
