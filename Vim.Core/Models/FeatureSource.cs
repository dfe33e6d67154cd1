namespace Vim.Core.Models;

/// <summary>What a dense-prediction Vim backbone taps at its tap blocks.</summary>
public enum FeatureSource
{
    /// <summary>The mixer output (hidden state, before it joins the residual) of each tap block (vimseg_tiny).</summary>
    MixerOutput,
    /// <summary>
    /// The residual stream: after tap block i it is read at the start of block i+1 (residual + hidden,
    /// with any RoPE rotation already applied); after the last block it is hidden + residual with no
    /// final norm (vimdet_*, vimseg_small).
    /// </summary>
    ResidualStream,
}
