using Vim.Core.Config;

namespace Vim.Core.Models;

/// <summary>
/// The model.backbone settings that change a registered backbone: input size, stochastic depth, the tapped blocks,
/// how a pretrained position embedding is resized (null: the registered variant's own value), activation
/// checkpointing (with_cp; every registered variant is built without it) and the Vim mixer's recomputation of in_proj's
/// output in backward (recompute_in_proj; off in every registered variant). Checked here, naming the config key, before
/// any layer is built.
/// </summary>
public sealed record BackboneOverrides(int? ImageSize = null, double? DropPathRate = null, IReadOnlyList<int>? TapBlocks = null,
    PosEmbedResizeRule? PosEmbedResize = null, bool WithCp = false, bool RecomputeInProj = false)
{
    public static BackboneOverrides None { get; } = new();

    public static BackboneOverrides From(BackboneConfig backbone) =>
        new(backbone.ImgSize, backbone.DropPathRate, backbone.OutIndices is { Count: > 0 } taps ? taps : null, backbone.PosEmbedResize,
            backbone.WithCp, backbone.RecomputeInProj);

    public VimConfig Apply(VimConfig variant)
    {
        Check(variant.Depth, variant.PatchSize, variant.Stride, variant.TapBlocks);
        return variant with
        {
            ImageSize = ImageSize ?? variant.ImageSize,
            DropPathRate = DropPathRate ?? variant.DropPathRate,
            TapBlocks = TapBlocks ?? variant.TapBlocks,
            PosEmbedResize = PosEmbedResize ?? variant.PosEmbedResize,
            ActivationCheckpointing = WithCp,
            RecomputeInputProjection = RecomputeInProj,
        };
    }

    public DeitConfig Apply(DeitConfig variant)
    {
        Check(variant.Depth, variant.PatchSize, variant.PatchSize, variant.TapBlocks);
        if (RecomputeInProj)
            throw new VimException("model.backbone.recompute_in_proj applies to Vim backbones (a DeiT block has no Mamba in_proj); remove the key");
        if (PosEmbedResize is not null)
            throw new VimException("model.backbone.pos_embed_resize applies to Vim backbones (DeiT's class slot is the first, where both rules " +
                "agree); remove the key");
        return variant with
        {
            ImageSize = ImageSize ?? variant.ImageSize,
            DropPathRate = DropPathRate ?? variant.DropPathRate,
            TapBlocks = TapBlocks ?? variant.TapBlocks,
            ActivationCheckpointing = WithCp,
        };
    }

    private void Check(int depth, int patchSize, int stride, IReadOnlyList<int> variantTaps)
    {
        if (DropPathRate is { } rate && !(rate >= 0 && rate < 1))
            throw new VimException($"model.backbone.drop_path_rate must be in [0, 1), got {rate}");
        if (ImageSize is { } size && (size < patchSize || (size - patchSize) % stride != 0))
            throw new VimException(stride == patchSize
                ? $"model.backbone.img_size must be a positive multiple of the patch size {patchSize}, got {size}"
                : $"model.backbone.img_size must be {patchSize} plus a multiple of the stride {stride}, got {size}");
        if (TapBlocks is not { } taps) return;
        if (variantTaps.Count == 0)
            throw new VimException($"model.backbone.out_indices is [{string.Join(", ", taps)}], but this backbone takes no intermediate " +
                "features (detection and classification read the last block); remove the key");
        if (taps.Count != variantTaps.Count)
            throw new VimException($"model.backbone.out_indices must name {variantTaps.Count} blocks, one per pyramid level, got [{string.Join(", ", taps)}]");
        for (int i = 0; i < taps.Count; i++)
        {
            if (taps[i] < 0 || taps[i] >= depth)
                throw new VimException($"model.backbone.out_indices: block {taps[i]} is outside 0..{depth - 1} (the backbone has {depth} blocks)");
            if (i > 0 && taps[i] <= taps[i - 1])
                throw new VimException($"model.backbone.out_indices must rise from the shallowest level to the deepest, got [{string.Join(", ", taps)}]");
        }
    }
}
