namespace Vim.Core.Config;

public sealed class BackboneConfig
{
    /// <summary>A registered backbone (see `vim model list`), e.g. vim_tiny, vimseg_tiny, vimdet_tiny, deit_tiny.</summary>
    public string Name { get; set; } = "vim_tiny";

    /// <summary>Training input size; position embeddings are resized to it.</summary>
    public int ImgSize { get; set; } = 224;

    public double DropPathRate { get; set; } = 0.1;

    /// <summary>Blocks whose outputs feed the multi-scale taps (segmentation: 5, 11, 17, 23).</summary>
    public List<int> OutIndices { get; set; } = [];

    /// <summary>An official or VimDense checkpoint (.pth or .safetensors) to initialise from.</summary>
    public string? Pretrained { get; set; }

    /// <summary>The entry of the checkpoint holding the weights (model or model_ema for official files).</summary>
    public string PretrainedKey { get; set; } = "model";
}
