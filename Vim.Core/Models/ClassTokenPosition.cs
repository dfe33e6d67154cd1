namespace Vim.Core.Models;

/// <summary>Where the class token sits in the token sequence.</summary>
public enum ClassTokenPosition
{
    /// <summary>No class token (dense-prediction backbones).</summary>
    None,
    /// <summary>Index 0, before all patches (ViT/DeiT style).</summary>
    Head,
    /// <summary>Index M/2 (integer division of the patch count), between the two halves of the patches (Vim).</summary>
    Middle,
}
