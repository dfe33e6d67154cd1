namespace Vim.Core.Config;

public sealed class ModelConfig
{
    public BackboneConfig Backbone { get; set; } = new();

    /// <summary>Number of foreground classes the heads predict (80 for COCO, 150 for ADE20k).</summary>
    public int NumClasses { get; set; } = 150;

    /// <summary>Detection heads (task: detection).</summary>
    public DetectionHeadConfig DetHead { get; set; } = new();

    /// <summary>Segmentation heads (task: segmentation).</summary>
    public SegmentationHeadConfig SegHead { get; set; } = new();

    /// <summary>Segmentation inference (task: segmentation).</summary>
    public SegmentationTestConfig SegTest { get; set; } = new();

    /// <summary>Detection test-time augmentation (task: detection).</summary>
    public DetectionTestConfig DetTest { get; set; } = new();
}
