namespace Vim.Core.Models;

/// <summary>How the classifier reads one vector out of the final normalised tokens.</summary>
public enum VimReadout
{
    /// <summary>The class token (the official models: their "final_pool_mean" branch is never reached).</summary>
    ClassToken,
    /// <summary>Mean over all tokens.</summary>
    Mean,
    /// <summary>The last token (official final_pool_type 'none').</summary>
    LastToken,
}
