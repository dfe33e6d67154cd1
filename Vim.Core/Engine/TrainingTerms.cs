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
    /// Whether the console's progress line shows the term: the losses and mmseg's statistics (decode.acc_seg), not
    /// detectron2's EventStorage scalars, whose names hold a '/' (rpn/num_pos_anchors, stage2/fast_rcnn/cls_accuracy: a
    /// detector logs about twenty); log.jsonl, TensorBoard and `vim report` get every term.
    /// </summary>
    public static bool OnProgressLine(string name) => IsLoss(name) || !name.Contains('/');
}
