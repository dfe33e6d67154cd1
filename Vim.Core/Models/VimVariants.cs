namespace Vim.Core.Models;

/// <summary>
/// The registered configurations as data. Drop-path rates are the ones the official training
/// scripts pass (tiny 0.0, small 0.05; base keeps the model default 0.1; detection 0.1); the
/// segmentation rate is the official segmentation backbone's own default, 0.1 (its configs do not set it).
/// </summary>
public static class VimVariants
{
    public static VimConfig Tiny { get; } = new() { EmbedDim = 192, DropPathRate = 0.0 };
    public static VimConfig Small { get; } = new() { EmbedDim = 384, DropPathRate = 0.05 };
    public static VimConfig Base { get; } = new() { EmbedDim = 768, DropPathRate = 0.1 };

    /// <summary>The "+" fine-tunes: overlapping patches (stride 8), 27×27 grid, 730 tokens.</summary>
    public static VimConfig TinyStride8 { get; } = Tiny with { Stride = 8 };
    public static VimConfig SmallStride8 { get; } = Small with { Stride = 8, DropPathRate = 0.0 };

    /// <summary>
    /// ViTDet-style detection backbone: 1024², RoPE on hidden and residual, no class token, no head,
    /// no final norm; the single feature is hidden + residual after the last block.
    /// (The official small detection config keeps a class token; ours has none for both sizes.)
    /// </summary>
    public static VimConfig DetTiny { get; } = Tiny with
    {
        ImageSize = 1024, NumClasses = 0, ClassToken = ClassTokenPosition.None, Readout = VimReadout.Mean,
        UseRope = true, RopeResidual = true, FinalNorm = false, DropPathRate = 0.1,
        Features = FeatureSource.ResidualStream,
    };
    public static VimConfig DetSmall { get; } = DetTiny with { EmbedDim = 384 };

    /// <summary>UperNet backbone, tiny: 512², mixer outputs of blocks 5/11/17/23, no RoPE, residual not forced to fp32.</summary>
    public static VimConfig SegTiny { get; } = Tiny with
    {
        ImageSize = 512, NumClasses = 0, ClassToken = ClassTokenPosition.None, Readout = VimReadout.Mean,
        ResidualInFp32 = false, DropPathRate = 0.1, Features = FeatureSource.MixerOutput, TapBlocks = new[] { 5, 11, 17, 23 },
    };

    /// <summary>UperNet backbone, small: RoPE on hidden and residual, the residual stream after blocks 5/11/17 and hidden + residual after 23.</summary>
    public static VimConfig SegSmall { get; } = SegTiny with
    {
        EmbedDim = 384, ResidualInFp32 = true, UseRope = true, RopeResidual = true, Features = FeatureSource.ResidualStream,
    };

    public static DeitConfig DeitTiny { get; } = new() { EmbedDim = 192, Heads = 3, DropPathRate = 0.1 };
    public static DeitConfig DeitSmall { get; } = new() { EmbedDim = 384, Heads = 6, DropPathRate = 0.1 };

    /// <summary>
    /// ViTDet-style DeiT-Ti detection backbone (official det/projects/ViTDet/configs/COCO/cascade_mask_rcnn_vitdet_t_100ep.py
    /// on detectron2's ViTDet ViT-B recipe): 1024², no class token in the sequence, pos_embed for the 64×64 grid (a 224²
    /// checkpoint's table is resized at load), no final norm, drop path 0.1, 14×14 window attention in every block but
    /// 2, 5, 8 and 11 (global), no relative position bias (use_rel_pos False in the tiny cascade config).
    /// </summary>
    public static DeitConfig DeitDetTiny { get; } = DeitTiny with
    {
        ImageSize = 1024, NumClasses = 0, ClassToken = false, FinalNorm = false, DropPathRate = 0.1,
        WindowSize = 14, GlobalBlocks = new[] { 2, 5, 8, 11 },
    };
}
