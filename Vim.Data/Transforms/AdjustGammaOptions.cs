namespace Vim.Data.Transforms;

/// <summary>mmseg AdjustGamma: every channel through the table 255 · (x / 255)^(1 / gamma).</summary>
public sealed record AdjustGammaOptions
{
    /// <summary>Above 1 brightens, below 1 darkens.</summary>
    public double Gamma { get; init; } = 1.0;
}
