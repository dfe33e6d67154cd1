namespace Vim.Detection;

/// <summary>
/// The named stages of <see cref="CascadeMaskRcnn.Predict"/> that <see cref="Vim.Core.Diagnostics.StageProfiler"/> can time
/// (`vim bench infer`'s breakdown, <see cref="Of"/>), in the order they run; none of those nests in another, so their times
/// add up to at most the whole prediction. The finer stages inside <see cref="Rpn"/> and <see cref="RoiHeads"/> (rpn_head,
/// rpn_targets, rpn_proposals, roi_targets, mask_targets) are for `vim train --profile`, which times every stage.
/// </summary>
public static class DetectionStages
{
    /// <summary>Padding to the square, the backbone and its simple feature pyramid (p2–p6).</summary>
    public const string Backbone = "backbone";

    /// <summary>RPN head on every level, anchor decoding, per-level top-k and NMS: the proposals.</summary>
    public const string Rpn = "rpn";

    /// <summary>Class-wise score threshold, NMS and top-k over the cascade's averaged scores and last boxes.</summary>
    public const string BoxInference = "box_inference";

    /// <summary>RoIAlign at the detected boxes, the mask head and the detected class's mask probabilities.</summary>
    public const string MaskHead = "mask_head";

    /// <summary>Boxes rescaled to the original image and masks pasted into it (thresholded at 0.5).</summary>
    public const string Paste = "paste";

    /// <summary>Inside <see cref="Rpn"/>: the RPN head's convolutions on every level.</summary>
    public const string RpnHead = "rpn_head";

    /// <summary>Training only, inside <see cref="Rpn"/>: anchor matching and sampling, and the objectness and box losses.</summary>
    public const string RpnTargets = "rpn_targets";

    /// <summary>Inside <see cref="Rpn"/>: anchor decoding, per-level top-k, clipping and NMS.</summary>
    public const string RpnProposals = "rpn_proposals";

    /// <summary>Training only, inside <see cref="RoiHeads"/>: each cascade stage's proposal matching (with the first
    /// stage's sampling; the later stages' refinement of the boxes).</summary>
    public const string RoiTargets = "roi_targets";

    /// <summary>Training only: every cascade stage's proposal matching and sampling, box head and losses, and the mask head
    /// with its targets and loss.</summary>
    public const string RoiHeads = "roi_heads";

    /// <summary>Training only, inside <see cref="RoiHeads"/>: the mask targets of the foreground RoIs (polygons rasterised
    /// in each box, or bitmasks sampled in it).</summary>
    public const string MaskTargets = "mask_targets";

    private static readonly string[] CascadeNames = Enumerable.Range(0, 8).Select(k => $"box_stage{k}").ToArray();

    /// <summary>Cascade stage <paramref name="stage"/>: the previous stage's boxes refined (after stage 0), RoIAlign, box head and predictor.</summary>
    public static string CascadeStage(int stage) => stage < CascadeNames.Length ? CascadeNames[stage] : $"box_stage{stage}";

    /// <summary>Every stage <paramref name="detector"/> runs at inference, in order.</summary>
    public static IReadOnlyList<string> Of(CascadeMaskRcnn detector) =>
    [
        Backbone, Rpn, .. Enumerable.Range(0, detector.RoiHeads.NumStages).Select(CascadeStage), BoxInference,
        .. detector.RoiHeads.MaskHead is null ? Array.Empty<string>() : [MaskHead], Paste,
    ];
}
