namespace Vim.Core.Engine;

/// <summary>Which of a task's training terms are minimised and which are only logged.</summary>
public static class TrainingTerms
{
    /// <summary>
    /// A term whose name contains "loss" is summed into the objective, as mmengine's parse_losses sums them; any other
    /// (a training accuracy such as mmseg's decode.acc_seg) is logged only.
    /// </summary>
    public static bool IsLoss(string name) => name.Contains("loss", StringComparison.Ordinal);

    /// <summary>
    /// Whether the console's progress line shows the term: the losses, the statistics a task names without a '/' (mmseg's
    /// decode.acc_seg and aux.acc_seg), and of detectron2's EventStorage scalars, whose names hold a '/', the box classifier's
    /// accuracy over the sampled RoIs of each stage (fast_rcnn/cls_accuracy, stage{k}/fast_rcnn/cls_accuracy: mmdet's acc and
    /// s{k}.acc, the one statistic its LoggerHook lines carry for a cascade). The other scalars (anchor and RoI counts,
    /// foreground accuracy, false negatives, mask_rcnn/*: about fifteen for a cascade) would run the line over several
    /// terminal lines per log interval; log.jsonl, TensorBoard and `vim report` get every term.
    /// </summary>
    public static bool OnProgressLine(string name) =>
        IsLoss(name) || !name.Contains('/') || name == ClassifierAccuracy || name.EndsWith("/" + ClassifierAccuracy, StringComparison.Ordinal);

    /// <summary>The box classifier's accuracy statistic (detectron2's fast_rcnn/cls_accuracy), after a cascade stage's stage{k}/.</summary>
    public const string ClassifierAccuracy = "fast_rcnn/cls_accuracy";
}
