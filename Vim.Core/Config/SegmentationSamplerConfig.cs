namespace Vim.Core.Config;

/// <summary>model.seg_head.sampler: which pixels the decode head's cross-entropy trains on (mmseg's decode_head sampler).</summary>
public sealed class SegmentationSamplerConfig
{
    public SegmentationSamplerKind Type { get; set; } = SegmentationSamplerKind.Ohem;

    /// <summary>
    /// Keep the labelled pixels whose predicted probability of their true class is below this (and at least about
    /// min_kept per image); null keeps the min_kept pixels per image with the largest loss.
    /// </summary>
    public double? Thresh { get; set; }

    /// <summary>Pixels kept per image of the batch at least (mmseg's default 100000; it must exceed 1).</summary>
    public int MinKept { get; set; } = 100000;
}

/// <summary>The pixel samplers of the decode head.</summary>
public enum SegmentationSamplerKind
{
    /// <summary>mmseg's OHEMPixelSampler: online hard example mining over pixels.</summary>
    Ohem,
}
