namespace Vim.Data.Transforms;

/// <summary>mmseg RGB2Gray: the weighted sum of the channels, repeated into every channel.</summary>
public sealed record Rgb2GrayOptions
{
    /// <summary>mmseg's out_channels; our images stay 3-channel (the backbones take RGB), so only null or 3.</summary>
    public int? OutChannels { get; init; }

    /// <summary>
    /// Weights of R, G and B (ITU-R BT.601 by default). mmseg applies them to its BGR arrays, so its default weighs blue by
    /// 0.299: reverse the list to reproduce an mmseg config to the pixel.
    /// </summary>
    public double[] Weights { get; init; } = [0.299, 0.587, 0.114];
}
