namespace Vim.Core.Config;

public sealed class OptimizerConfig
{
    public OptimizerKind Type { get; set; } = OptimizerKind.AdamW;

    public double Lr { get; set; } = 1e-4;

    public double WeightDecay { get; set; } = 0.05;

    public List<double> Betas { get; set; } = [0.9, 0.999];

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Layer-wise learning-rate decay: layer id i gets rate^(num_layers + 1 − i); 1 disables it.</summary>
    public double LayerDecayRate { get; set; } = 1.0;

    /// <summary>What layer-wise decay reaches: the embedding and every block, or (the official segmentation recipe) the embedding alone.</summary>
    public LayerDecayScope LayerDecayScope { get; set; } = LayerDecayScope.Blocks;

    /// <summary>Which parameters get no weight decay: vim, detectron2 (official detection) or beit (official segmentation).</summary>
    public NoDecayRule NoDecay { get; set; } = NoDecayRule.Vim;

    /// <summary>
    /// Per-name multipliers of lr and weight decay (mmengine's paramwise_cfg.custom_keys), e.g. backbone: {lr_mult: 0.1},
    /// or lr_mult 0 to freeze. A parameter takes the longest key its name contains (ties: the first in ordinal order).
    /// </summary>
    public Dictionary<string, CustomKeyConfig> CustomKeys { get; set; } = [];

    /// <summary>Clip gradients to this global L2 norm; null disables clipping.</summary>
    public double? GradClipNorm { get; set; }
}
