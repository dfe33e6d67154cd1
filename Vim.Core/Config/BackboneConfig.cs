namespace Vim.Core.Config;

public sealed class BackboneConfig
{
    /// <summary>A registered backbone (see `vim model list`), e.g. vim_tiny, vimseg_tiny, vimdet_tiny, deit_tiny.</summary>
    public string Name { get; set; } = "vim_tiny";

    /// <summary>
    /// The input size the position embeddings are made for (the registered backbone's when unset: 224 for
    /// classifiers, 512 for segmentation, 1024 for detection); pretrained ones are resized to it.
    /// </summary>
    public int? ImgSize { get; set; }

    /// <summary>
    /// Top of the official stochastic-depth schedule (linearly spaced over the blocks, as each official model spaces it);
    /// the registered backbone's when unset.
    /// </summary>
    public double? DropPathRate { get; set; }

    /// <summary>Blocks whose outputs feed the multi-scale taps (segmentation: 5, 11, 17, 23); the registered backbone's when unset.</summary>
    public List<int>? OutIndices { get; set; }

    /// <summary>
    /// How a pretrained Vim position embedding with a class slot is resized to this backbone's grid: class_slot_aware
    /// (the default: the class slot is taken from where the class token sits) or official_first_slot (bit-compatible
    /// with the official interpolate_pos_embed, which takes slot 0 for the class slot also for a middle class token).
    /// The registered backbone's when unset; Vim backbones only.
    /// </summary>
    public Vim.Core.Models.PosEmbedResizeRule? PosEmbedResize { get; set; }

    /// <summary>
    /// Activation checkpointing (mmdet/mmseg's with_cp): in training, each backbone block (Vim or DeiT) keeps only its
    /// inputs and is recomputed in backward, trading a second forward of the blocks for their activation memory.
    /// Results are unchanged; evaluation and inference are unaffected.
    /// </summary>
    public bool WithCp { get; set; }

    /// <summary>
    /// Vim backbones only: in training, each block's mixer keeps neither half of in_proj's output (x and z) for backward
    /// but recomputes them there from the residual, once for both directions. Results are unchanged, bit for bit; what the
    /// graph keeps per block and token falls from about 4.3 to 2.3 × d_inner floats, for one more in_proj product per block
    /// in backward. Off by default, as the official mamba_inner_fn keeps in_proj's output.
    /// </summary>
    public bool RecomputeInProj { get; set; }

    /// <summary>An official or VimDense checkpoint (.pth or .safetensors) to initialise from.</summary>
    public string? Pretrained { get; set; }

    /// <summary>The entry of the checkpoint holding the weights (model or model_ema for official files).</summary>
    public string PretrainedKey { get; set; } = "model";
}
