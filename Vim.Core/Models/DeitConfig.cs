namespace Vim.Core.Models;

/// <summary>
/// A DeiT / ViT variant: the timm VisionTransformer (head class token, final norm, linear head) or,
/// with <see cref="ClassToken"/> and <see cref="FinalNorm"/> off, the ViTDet-style plain backbone
/// (patch tokens only, features straight from the last block).
/// </summary>
public sealed record DeitConfig
{
    public int EmbedDim { get; init; } = 192;
    public int Depth { get; init; } = 12;
    public int Heads { get; init; } = 3;
    public double MlpRatio { get; init; } = 4;
    public int PatchSize { get; init; } = 16;
    public int ImageSize { get; init; } = 224;
    public int InChannels { get; init; } = 3;
    /// <summary>Classes of the linear head; 0 = no head.</summary>
    public int NumClasses { get; init; } = 1000;
    public double NormEps { get; init; } = 1e-6;
    /// <summary>A class token at index 0 of the sequence (and a class slot in pos_embed); off for the detection backbone.</summary>
    public bool ClassToken { get; init; } = true;
    /// <summary>The final LayerNorm (<c>norm</c>); ViTDet's backbone has none (its pyramid reads the last block directly).</summary>
    public bool FinalNorm { get; init; } = true;
    public double DropPathRate { get; init; }
    public AttentionKind Attention { get; init; } = AttentionKind.ScaledDotProduct;
    /// <summary>
    /// ViTDet window attention: blocks not in <see cref="GlobalBlocks"/> attend within non-overlapping
    /// WindowSize × WindowSize windows of the token grid (zero-padded to a multiple); 0 = every block global.
    /// Needs a sequence without class token.
    /// </summary>
    public int WindowSize { get; init; }
    /// <summary>Blocks that attend globally when <see cref="WindowSize"/> is set (ViTDet ViT-B/Ti: 2, 5, 8, 11).</summary>
    public IReadOnlyList<int> GlobalBlocks { get; init; } = Array.Empty<int>();
    /// <summary>Blocks whose outputs <see cref="VisionTransformer.ForwardTaps"/> returns; empty = the last block only.</summary>
    public IReadOnlyList<int> TapBlocks { get; init; } = Array.Empty<int>();
    /// <summary>
    /// Recompute each block in backward instead of keeping its activations (model.backbone.with_cp; ViTDet's
    /// <c>use_act_checkpoint</c>): training only, see <see cref="ActivationCheckpoint"/>.
    /// </summary>
    public bool ActivationCheckpointing { get; init; }

    public int GridSize => ImageSize / PatchSize;

    public void Validate()
    {
        if (EmbedDim <= 0 || Heads <= 0 || EmbedDim % Heads != 0)
            throw new VimException($"DeitConfig: EmbedDim {EmbedDim} must be a positive multiple of Heads {Heads}.");
        if (Depth <= 0) throw new VimException($"DeitConfig.Depth must be positive, got {Depth}.");
        if (ImageSize % PatchSize != 0) throw new VimException($"DeitConfig.ImageSize {ImageSize} is not a multiple of PatchSize {PatchSize}.");
        if (WindowSize < 0) throw new VimException($"DeitConfig.WindowSize must be 0 (global attention) or positive, got {WindowSize}.");
        if (WindowSize > 0 && ClassToken)
            throw new VimException("DeitConfig: window attention (WindowSize > 0) partitions the patch grid and needs ClassToken = false.");
        foreach (var block in GlobalBlocks)
            if (block < 0 || block >= Depth) throw new VimException($"DeitConfig.GlobalBlocks: block {block} is outside 0..{Depth - 1}.");
        foreach (var tap in TapBlocks)
            if (tap < 0 || tap >= Depth) throw new VimException($"DeitConfig.TapBlocks: block {tap} is outside 0..{Depth - 1}.");
    }
}
