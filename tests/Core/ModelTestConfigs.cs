using Vim.Core.Models;

namespace Vim.Tests.Core;

/// <summary>Small configurations that keep behavioural tests fast with the reference scan.</summary>
internal static class ModelTestConfigs
{
    /// <summary>Width 16, depth 2, 32² input with patch 16 → a 2×2 grid; middle class token; 5 classes.</summary>
    public static VimConfig TinyVim { get; } = new()
    {
        EmbedDim = 16, Depth = 2, StateSize = 4, ImageSize = 32, NumClasses = 5,
    };

    /// <summary>A detection-style backbone: RoPE on hidden and residual, no class token, no head, no final norm.</summary>
    public static VimConfig TinyDet { get; } = TinyVim with
    {
        ImageSize = 64, NumClasses = 0, ClassToken = ClassTokenPosition.None, Readout = VimReadout.Mean,
        UseRope = true, RopeResidual = true, FinalNorm = false, Features = FeatureSource.ResidualStream,
    };

    public static DeitConfig TinyDeit { get; } = new()
    {
        EmbedDim = 32, Heads = 4, Depth = 2, ImageSize = 32, NumClasses = 5,
    };
}
