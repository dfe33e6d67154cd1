namespace Vim.Data.Transforms;

/// <summary>Pad at the bottom/right to a fixed [height, width] or to multiples of a divisor.</summary>
public sealed record PadOptions
{
    /// <summary>[height, width]; exclusive with <see cref="SizeDivisor"/>.</summary>
    public int[]? Size { get; init; }
    public int? SizeDivisor { get; init; }

    /// <summary>Image fill (applied to the normalized tensor if Normalize ran before, as in mmseg).</summary>
    public int PadValue { get; init; }

    /// <summary>Label-map fill: the ignore index.</summary>
    public int SegPadValue { get; init; } = 255;
}
