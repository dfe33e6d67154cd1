namespace Vim.Core.Models;

/// <summary>How the ViT baseline computes self-attention (same result, different cost).</summary>
public enum AttentionKind
{
    /// <summary>torch's scaled_dot_product_attention (fused kernels where libtorch has them).</summary>
    ScaledDotProduct,
    /// <summary>softmax(Q·Kᵀ/√d)·V with the L×L matrix materialised, as the Vim paper's DeiT timing did.</summary>
    Explicit,
}
