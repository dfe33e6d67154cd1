using Vim.Core.Config;

namespace Vim.Detection.Modeling;

/// <summary>
/// Region proposal network settings; defaults are the ViTDet / Detectron2 values: IoU 0.3 / 0.7
/// with low-quality matches, 256 anchors per image at half positives, top 2000 (train) / 1000
/// (test) per level before NMS 0.7, 1000 per image after, L1 box loss (smooth-L1 β 0), both losses weighted 1, anchors of
/// sizes 32…512 (one per level p2–p6) at aspect ratios 0.5 / 1 / 2.
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

    /// <summary>Smooth-L1 on the deltas, or an IoU loss on the decoded boxes (detectron2's RPN.BBOX_REG_LOSS_TYPE).</summary>
    public BoxRegressionLossType BoxRegressionLoss { get; init; } = BoxRegressionLossType.SmoothL1;

    /// <summary>Factor of loss_rpn_cls (mmdet's rpn_head.loss_cls.loss_weight).</summary>
    public double ObjectnessLossWeight { get; init; } = 1.0;

    /// <summary>Factor of loss_rpn_loc (mmdet's rpn_head.loss_bbox.loss_weight).</summary>
    public double BoxLossWeight { get; init; } = 1.0;

    /// <summary>Anchor sizes of each pyramid level p2–p6 (detectron2's ANCHOR_GENERATOR.SIZES), the same count on every level.</summary>
    public IReadOnlyList<IReadOnlyList<double>> AnchorSizes { get; init; } =
        new[] { new[] { 32.0 }, new[] { 64.0 }, new[] { 128.0 }, new[] { 256.0 }, new[] { 512.0 } };

    /// <summary>Anchor aspect ratios height / width (detectron2's ANCHOR_GENERATOR.ASPECT_RATIOS).</summary>
    public IReadOnlyList<double> AnchorAspectRatios { get; init; } = new[] { 0.5, 1.0, 2.0 };

    /// <summary>Box coder weights (wx, wy, ww, wh).</summary>
    public (double X, double Y, double W, double H) BoxWeights { get; init; } = (1, 1, 1, 1);
}
