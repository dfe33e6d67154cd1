namespace Vim.Core.Models;

/// <summary>
/// Everything that distinguishes one Vision Mamba variant from another. Defaults are Vim-Ti as
/// released (classification, 224², patch 16, middle class token, bimamba v2, /2 outputs).
/// </summary>
public sealed record VimConfig
{
    public int EmbedDim { get; init; } = 192;
    public int Depth { get; init; } = 24;
    public int PatchSize { get; init; } = 16;
    /// <summary>Patch-embedding stride: 16, or 8 for the overlapping "+" models.</summary>
    public int Stride { get; init; } = 16;
    /// <summary>The size the position embedding (and RoPE buffers) are built for; other sizes are resized at run time.</summary>
    public int ImageSize { get; init; } = 224;
    public int InChannels { get; init; } = 3;
    /// <summary>Classes of the linear head; 0 = no head (backbone only).</summary>
    public int NumClasses { get; init; } = 1000;
    public int StateSize { get; init; } = 16;
    public int ConvKernel { get; init; } = 4;
    public int Expand { get; init; } = 2;
    /// <summary>Rank of the Δ projection; null = ceil(EmbedDim / 16) (Mamba's "auto").</summary>
    public int? DtRank { get; init; }
    public double NormEps { get; init; } = 1e-5;
    public ClassTokenPosition ClassToken { get; init; } = ClassTokenPosition.Middle;
    public VimReadout Readout { get; init; } = VimReadout.ClassToken;
    public bool UseRope { get; init; }
    /// <summary>Rotate the running residual too before every block (rotations compound across depth, as in the official code).</summary>
    public bool RopeResidual { get; init; }
    /// <summary>RoPE's pretraining grid (positions are scaled to it): 14 = 224/16.</summary>
    public int RopePretrainGrid { get; init; } = 14;
    public double DropPathRate { get; init; }
    /// <summary>Average the two directions (if_divide_out) instead of summing them.</summary>
    public bool DivideOut { get; init; } = true;
    public bool ResidualInFp32 { get; init; } = true;
    /// <summary>Whether the model owns norm_f (dense taps never apply it).</summary>
    public bool FinalNorm { get; init; } = true;
    public FeatureSource Features { get; init; } = FeatureSource.ResidualStream;
    /// <summary>Blocks whose features <see cref="VisionMamba.ForwardTaps"/> returns; empty = only the final feature.</summary>
    public IReadOnlyList<int> TapBlocks { get; init; } = Array.Empty<int>();
    public PosEmbedResizeRule PosEmbedResize { get; init; } = PosEmbedResizeRule.ClassSlotAware;
    /// <summary>
    /// Recompute each block in backward instead of keeping its activations (model.backbone.with_cp; the official
    /// <c>use_checkpoint</c>): training only, see <see cref="ActivationCheckpoint"/>.
    /// </summary>
    public bool ActivationCheckpointing { get; init; }
    /// <summary>
    /// In training, recompute each mixer's in_proj output in backward instead of keeping it (model.backbone.recompute_in_proj):
    /// see <see cref="InputProjectionReplay"/>.
    /// </summary>
    public bool RecomputeInputProjection { get; init; }

    public int EffectiveDtRank => DtRank ?? (EmbedDim + 15) / 16;
    public int GridSize => (ImageSize - PatchSize) / Stride + 1;

    /// <summary>Throws a <see cref="VimException"/> naming the first inconsistent field.</summary>
    public void Validate()
    {
        if (EmbedDim <= 0) throw new VimException($"VimConfig.EmbedDim must be positive, got {EmbedDim}.");
        if (Depth <= 0) throw new VimException($"VimConfig.Depth must be positive, got {Depth}.");
        if (ImageSize < PatchSize || (ImageSize - PatchSize) % Stride != 0)
            throw new VimException($"VimConfig.ImageSize {ImageSize} does not tile with patch {PatchSize} and stride {Stride}.");
        if (Readout == VimReadout.ClassToken && ClassToken == ClassTokenPosition.None && NumClasses > 0)
            throw new VimException("VimConfig.Readout is ClassToken but ClassToken is None.");
        if (UseRope && EmbedDim % 4 != 0) throw new VimException($"VimConfig.UseRope needs EmbedDim divisible by 4, got {EmbedDim}.");
        if (RopeResidual && !UseRope) throw new VimException("VimConfig.RopeResidual requires UseRope.");
        if (DropPathRate < 0 || DropPathRate >= 1) throw new VimException($"VimConfig.DropPathRate must be in [0, 1), got {DropPathRate}.");
        foreach (var tap in TapBlocks)
            if (tap < 0 || tap >= Depth) throw new VimException($"VimConfig.TapBlocks: block {tap} is outside 0..{Depth - 1}.");
    }
}
