namespace Vim.Detection.Modeling;

/// <summary>
/// Region proposal network settings; defaults are the ViTDet / Detectron2 values: IoU 0.3 / 0.7
/// with low-quality matches, 256 anchors per image at half positives, top 2000 (train) / 1000
/// (test) per level before NMS 0.7, 1000 per image after, L1 box loss (smooth-L1 β 0).
/// </summary>
public sealed record RpnSettings
{
    public IReadOnlyList<double> IouThresholds { get; init; } = new[] { 0.3, 0.7 };
    public IReadOnlyList<int> IouLabels { get; init; } = new[] { 0, -1, 1 };
    public bool AllowLowQualityMatches { get; init; } = true;
    public long BatchSizePerImage { get; init; } = 256;
    public double PositiveFraction { get; init; } = 0.5;
    public long PreNmsTopKTrain { get; init; } = 2000;
    public long PreNmsTopKTest { get; init; } = 1000;
    public long PostNmsTopKTrain { get; init; } = 1000;
    public long PostNmsTopKTest { get; init; } = 1000;
    public double NmsThreshold { get; init; } = 0.7;
    public double MinBoxSize { get; init; }
    public double SmoothL1Beta { get; init; }
    public double LossWeight { get; init; } = 1.0;

    /// <summary>Box coder weights (wx, wy, ww, wh).</summary>
    public (double X, double Y, double W, double H) BoxWeights { get; init; } = (1, 1, 1, 1);
}
