namespace Vim.Data.Loading;

/// <summary>One image's instances as plain arrays (masks flattened n×MaskHeight×MaskWidth).</summary>
internal sealed record HostTarget(float[] Boxes, long[] Labels, bool[] IsCrowd, byte[]? Masks, int MaskHeight, int MaskWidth,
    IReadOnlyList<IReadOnlyList<double[]>?>? Outlines);
