namespace Vim.Core.Config;

/// <summary>Which parameters the optimizer exempts from weight decay: each official recipe has its own rule.</summary>
public enum NoDecayRule
{
    /// <summary>Vim's: every 1-D parameter (biases, norm gains, D), position embeddings, the class token and A_log.</summary>
    [ConfigKey("vim")]
    Vim,

    /// <summary>
    /// detectron2's (the official detection recipe: weight_decay_norm 0 and a pos_embed override): the parameters of
    /// torch's own norm layers (BatchNorm, SyncBN, GroupNorm, LayerNorm) and the position embedding; biases, RMSNorm,
    /// channel LayerNorm, A_log and D decay.
    /// </summary>
    [ConfigKey("detectron2")]
    Detectron2,

    /// <summary>
    /// BEiT's layer-decay optimizer constructor (the official segmentation recipe): 1-D parameters and biases. Its
    /// exemption of pos_embed and cls_token compares the full name, which the backbone. prefix never matches.
    /// </summary>
    [ConfigKey("beit")]
    Beit,
}
