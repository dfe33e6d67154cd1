namespace Vim.Core.Engine;

/// <summary>Which of a task's training terms are minimised and which are only logged.</summary>
public static class TrainingTerms
{
    /// <summary>
    /// A term whose name contains "loss" is summed into the objective, as mmengine's parse_losses sums them; any other
    /// (a training accuracy such as mmseg's decode.acc_seg) is logged only.
    /// </summary>
    public static bool IsLoss(string name) => name.Contains("loss", StringComparison.Ordinal);
}
