namespace Vim.Core.Models;

/// <summary>
/// Every buildable model by timm-style name, constructed in this one visible place.
/// Classification models are bare <see cref="VisionMamba"/> / <see cref="VisionTransformer"/>;
/// detection entries wrap the backbone in a <see cref="SimpleFeaturePyramid"/> and segmentation
/// entries in a <see cref="SegmentationPyramid"/>.
/// </summary>
public static class ModelRegistry
{
    private static readonly int[] DeitSegTaps = { 3, 5, 7, 11 };

    public static IReadOnlyList<ModelEntry> All { get; } = new ModelEntry[]
    {
        new("vim_tiny", "Vim-Ti classifier, 224², middle class token", (s, o) => new VisionMamba(o.Apply(VimVariants.Tiny), s)),
        new("vim_small", "Vim-S classifier, 224², middle class token", (s, o) => new VisionMamba(o.Apply(VimVariants.Small), s)),
        new("vim_base", "Vim-B classifier, 224², middle class token", (s, o) => new VisionMamba(o.Apply(VimVariants.Base), s)),
        new("vim_tiny_stride8", "Vim-Ti+ classifier, patch 16 stride 8 (730 tokens)", (s, o) => new VisionMamba(o.Apply(VimVariants.TinyStride8), s)),
        new("vim_small_stride8", "Vim-S+ classifier, patch 16 stride 8 (730 tokens)", (s, o) => new VisionMamba(o.Apply(VimVariants.SmallStride8), s)),
        new("vimdet_tiny", "Vim-Ti detection backbone (RoPE, no cls, 1024²) + simple feature pyramid p2–p6", (s, o) => new SimpleFeaturePyramid(new VisionMamba(o.Apply(VimVariants.DetTiny), s), seed: s + 1)),
        new("vimdet_small", "Vim-S detection backbone (RoPE, no cls, 1024²) + simple feature pyramid p2–p6", (s, o) => new SimpleFeaturePyramid(new VisionMamba(o.Apply(VimVariants.DetSmall), s), seed: s + 1)),
        new("vimseg_tiny", "Vim-Ti segmentation backbone (512², mixer-output taps 5/11/17/23) + fpn1–fpn4", (s, o) => new SegmentationPyramid(new VisionMamba(o.Apply(VimVariants.SegTiny), s))),
        new("vimseg_small", "Vim-S segmentation backbone (512², RoPE, residual-stream taps) + fpn1–fpn4", (s, o) => new SegmentationPyramid(new VisionMamba(o.Apply(VimVariants.SegSmall), s))),
        new("deit_tiny", "DeiT-Ti classifier, 224²", (s, o) => new VisionTransformer(o.Apply(VimVariants.DeitTiny), s)),
        new("deit_small", "DeiT-S classifier, 224²", (s, o) => new VisionTransformer(o.Apply(VimVariants.DeitSmall), s)),
        new("deitdet_tiny", "DeiT-Ti detection backbone (ViTDet-style: no cls, 1024², 14² windows + 4 global blocks) + simple feature pyramid p2–p6",
            (s, o) => new SimpleFeaturePyramid(new VisionTransformer(o.Apply(VimVariants.DeitDetTiny), s), seed: s + 1)),
        new("deitseg_tiny", "DeiT-Ti segmentation backbone (512², blocks 3/5/7/11) + fpn1–fpn4",
            (s, o) => new SegmentationPyramid(new VisionTransformer(o.Apply(VimVariants.DeitTiny with { ImageSize = 512, NumClasses = 0, TapBlocks = DeitSegTaps }), s))),
        new("deitseg_small", "DeiT-S segmentation backbone (512², blocks 3/5/7/11) + fpn1–fpn4",
            (s, o) => new SegmentationPyramid(new VisionTransformer(o.Apply(VimVariants.DeitSmall with { ImageSize = 512, NumClasses = 0, TapBlocks = DeitSegTaps }), s))),
    };

    public static ModelEntry Get(string name) =>
        All.FirstOrDefault(e => e.Name == name)
        ?? throw new VimException($"Unknown model '{name}'. Registered models: {string.Join(", ", All.Select(e => e.Name))}.");

    /// <summary>
    /// Builds a registered model with the given init seed. The global generator is seeded with it first: layers the
    /// model leaves at TorchSharp's default initialisation (the segmentation necks' transposed convs, say) draw from
    /// it, and its state at that point differs from process to process, so two runs of one config started from
    /// different weights.
    /// </summary>
    /// <param name="overrides">model.backbone settings that change the registered variant (its own values where null).</param>
    public static TorchSharp.torch.nn.Module Create(string name, long seed = 0, BackboneOverrides? overrides = null)
    {
        var entry = Get(name);
        TorchSharp.torch.manual_seed(seed);
        return entry.Create(seed, overrides ?? BackboneOverrides.None);
    }
}
