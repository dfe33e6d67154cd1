namespace Vim.Core.Checkpoints;

/// <summary>Where a position-embedding table keeps the class token's row.</summary>
public enum ClassTokenSlot
{
    /// <summary>No class token: every row is a patch.</summary>
    None,

    /// <summary>Row 0 (ViT/DeiT, Vim without use_middle_cls_token).</summary>
    Head,

    /// <summary>Row M // 2 for M patches (the released Vim models).</summary>
    Middle,
}
