using Vim.Core.Config;

namespace Vim.Segmentation;

/// <summary>
/// The named stages of test-time segmentation (<see cref="EncoderDecoder.forward"/> inside
/// <see cref="SegmentationInference.Scores"/> and <see cref="SegmentationInference.Labels"/>) that
/// <see cref="Vim.Core.Diagnostics.StageProfiler"/> can time (`vim bench infer`'s breakdown); none nests in another. The
/// auxiliary head has none: as in mmseg, it only trains.
/// </summary>
public static class SegmentationStages
{
    /// <summary>Padding to the patch grid, the backbone and its pyramid (fpn1–fpn4).</summary>
    public const string Backbone = "backbone";

    /// <summary>The UperNet decode head and its logits resized to the input and cropped.</summary>
    public const string DecodeHead = "decode_head";

    /// <summary>Training only: the decode losses, the auxiliary head with its loss, and the pixel accuracies.</summary>
    public const string Losses = "losses";

    /// <summary>Sliding-window bookkeeping: each window's logits placed into the image's sum, the coverage counts, the division.</summary>
    public const string SlideWindow = "slide_window";

    /// <summary>Flips of the input and of its logits, the resize to the original size, and the softmax average of several passes.</summary>
    public const string Rescale = "rescale";

    /// <summary>The argmax over classes and the label map's copy to the host.</summary>
    public const string Argmax = "argmax";

    /// <summary>Every stage inference runs under <paramref name="test"/> (model.seg_test), in order.</summary>
    public static IReadOnlyList<string> Of(SegmentationTestConfig test) =>
        test.Mode == "slide" ? [Backbone, DecodeHead, SlideWindow, Rescale, Argmax] : [Backbone, DecodeHead, Rescale, Argmax];
}
