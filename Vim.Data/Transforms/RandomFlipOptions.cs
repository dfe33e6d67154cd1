namespace Vim.Data.Transforms;

/// <summary>Horizontal flip with probability <see cref="Prob"/>.</summary>
public sealed record RandomFlipOptions
{
    public double Prob { get; init; } = 0.5;
}
