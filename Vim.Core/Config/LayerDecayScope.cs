namespace Vim.Core.Config;

/// <summary>Which parameters layer-wise learning-rate decay reaches.</summary>
public enum LayerDecayScope
{
    /// <summary>The embedding (layer 0) and each backbone block (block i: layer i + 1).</summary>
    [ConfigKey("blocks")]
    Blocks,

    /// <summary>
    /// The embedding alone; blocks train at the full rate like the heads. The official Vim segmentation recipe does
    /// this: its BEiT-copied constructor looks for backbone.blocks, and Vim's blocks are backbone.layers.
    /// </summary>
    [ConfigKey("embeddings")]
    Embeddings,
}
