namespace Vim.Core.Config;

/// <summary>RPN and cascade ROI heads of Cascade Mask R-CNN (defaults: the official ViTDet-style setup).</summary>
public sealed class DetectionHeadConfig
{
    public int RpnBatchSizePerImage { get; set; } = 256;

    public int RpnPreNmsTopkTrain { get; set; } = 2000;

    public int RpnPostNmsTopkTrain { get; set; } = 1000;

    public int RpnPreNmsTopkTest { get; set; } = 1000;

    public int RpnPostNmsTopkTest { get; set; } = 1000;

    /// <summary>RoIs sampled per image for the box heads (25% positives).</summary>
    public int RoiBatchSizePerImage { get; set; } = 512;

    public List<int> BoxHeadConvDims { get; set; } = [256, 256, 256, 256];

    public List<int> BoxHeadFcDims { get; set; } = [1024];

    public bool MaskOn { get; set; } = true;

    /// <summary>Mask head: four 3×3 convs and the deconv.</summary>
    public List<int> MaskHeadConvDims { get; set; } = [256, 256, 256, 256, 256];

    public double TestScoreThreshold { get; set; } = 0.05;

    public double TestNmsThreshold { get; set; } = 0.5;

    public int DetectionsPerImage { get; set; } = 100;
}
