namespace Vim.Data.Evaluation;

/// <summary>
/// Semantic-segmentation numbers as fractions in [0, 1] (mmseg prints them ×100). Per-class arrays hold
/// NaN where the class is undefined (no pixels in the denominator).
/// </summary>
public sealed record SegmentationResult(
    double AAcc,
    double MIoU,
    double MAcc,
    double MDice,
    double MPrecision,
    double MRecall,
    double MFscore,
    double Kappa,
    double[] IoU,
    double[] Acc,
    double[] Dice,
    double[] Precision,
    double[] Recall,
    double[] Fscore);
