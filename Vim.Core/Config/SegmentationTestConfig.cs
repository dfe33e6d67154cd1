namespace Vim.Core.Config;

/// <summary>How a segmentation model predicts at test time.</summary>
public sealed class SegmentationTestConfig
{
    /// <summary>whole: one pass over the (resized) image; slide: overlapping crops with logits averaged.</summary>
    public string Mode { get; set; } = "slide";

    public List<int> CropSize { get; set; } = [512, 512];

    public List<int> Stride { get; set; } = [341, 341];

    /// <summary>Also predict on the horizontally flipped image and average.</summary>
    public bool Flip { get; set; }

    /// <summary>
    /// Test-time ratios of data.scale (mmseg's img_ratios): each resizes the original image to fit data.scale × ratio;
    /// with several (or with flip) the passes' softmax outputs at the original size are averaged.
    /// </summary>
    public List<double> Scales { get; set; } = [1.0];
}
