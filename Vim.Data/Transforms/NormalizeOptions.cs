namespace Vim.Data.Transforms;

/// <summary>Per-channel mean/std in RGB order (ImageNet statistics by default, as both official recipes use).</summary>
public sealed record NormalizeOptions
{
    public double[] Mean { get; init; } = [123.675, 116.28, 103.53];
    public double[] Std { get; init; } = [58.395, 57.12, 57.375];
}
