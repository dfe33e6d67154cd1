namespace Vim.Core.Config;

/// <summary>
/// data.copy_paste (detection training): Simple Copy-Paste (Ghiasi et al. 2021) as MMDetection's CopyPaste inside its
/// MultiImageMixDataset: each training sample gets objects of a second training sample, augmented the same way, pasted
/// over it. The section absent or null leaves it off. The defaults are mmdet's.
/// </summary>
public sealed class CopyPasteConfig
{
    /// <summary>
    /// With <see cref="Selected"/>, the number of pasted objects is drawn uniformly from 0 up to min(the source's objects,
    /// this − 1): mmdet's exclusive draw, so 100 pastes at most 99.
    /// </summary>
    public int MaxNumPasted { get; set; } = 100;

    /// <summary>A covered destination object stays while no side of its box, recomputed from its visible pixels, moved by more than this many pixels …</summary>
    public int BboxOccludedThr { get; set; } = 10;

    /// <summary>… or while more than this many of its pixels stay visible.</summary>
    public int MaskOccludedThr { get; set; } = 300;

    /// <summary>Paste a random subset of the source's objects (<see cref="MaxNumPasted"/>); false pastes them all.</summary>
    public bool Selected { get; set; } = true;

    /// <summary>
    /// For a detector without masks (model.det_head.mask_on: false): each object is its box's rectangle of pixels, as mmdet's
    /// paste_by_box makes masks from boxes.
    /// </summary>
    public bool PasteByBox { get; set; }
}
