namespace Vim.Core.Config;

/// <summary>The UperNet decode head and FCN auxiliary head of a segmentation model.</summary>
public sealed class SegmentationHeadConfig
{
    /// <summary>Decode-head width: 192 for Vim-Ti, 384 for Vim-S (the official configs).</summary>
    public int Channels { get; set; } = 192;

    public List<int> PoolScales { get; set; } = [1, 2, 3, 6];

    public double DropoutRatio { get; set; } = 0.1;

    public SegmentationLossKind Loss { get; set; } = SegmentationLossKind.CrossEntropy;

    public double LossWeight { get; set; } = 1.0;

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
}
