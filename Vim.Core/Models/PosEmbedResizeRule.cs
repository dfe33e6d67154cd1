namespace Vim.Core.Models;

/// <summary>How a position embedding with an extra (class) slot is resized to another token grid.</summary>
public enum PosEmbedResizeRule
{
    /// <summary>
    /// Take the class slot out of where the class token really sits (index M/2 for a middle token),
    /// resize the patch grid, re-insert the class slot at the new grid's class index.
    /// </summary>
    ClassSlotAware,
    /// <summary>
    /// Bit-compatible with the official vim/utils.interpolate_pos_embed and main.py --finetune: entry 0
    /// is assumed to be the class slot whatever the token position, so with a middle class token patch 0
    /// is kept unresized and the real class slot is interpolated as if it were a patch.
    /// </summary>
    OfficialFirstSlot,
}
