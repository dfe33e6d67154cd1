using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>A patch-token backbone that can hand out feature maps for dense prediction.</summary>
public interface ITokenBackbone
{
    /// <summary>Channels of every tapped map.</summary>
    int EmbedDim { get; }

    /// <summary>Pixels per token step (the patch-embedding stride).</summary>
    int TokenStride { get; }

    /// <summary>The square input size its position embeddings are laid out for (model.backbone.img_size).</summary>
    int ImageSize { get; }

    /// <summary>Tapped feature maps (B, EmbedDim, rows, cols), shallowest first.</summary>
    IReadOnlyList<Tensor> ForwardTaps(Tensor images);

    /// <summary>Final token features (B, L, EmbedDim): what a classifier head or a feature extractor reads.</summary>
    Tensor ForwardTokens(Tensor images);
}
