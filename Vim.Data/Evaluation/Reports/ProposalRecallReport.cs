using System.Text;

namespace Vim.Data.Evaluation.Reports;

/// <summary>The proposal recall's section of `vim test`'s box summary (bbox/summary.md), beside the box AP it bounds.</summary>
public static class ProposalRecallReport
{
    /// <param name="summary">The class-agnostic evaluation of <see cref="ProposalRecall.Evaluate"/>.</param>
    /// <param name="summaryDir">The folder of the summary the section goes into (its links are relative to it).</param>
    /// <param name="proposalsFile">The proposals as COCO results.</param>
    /// <param name="proposalsPerImage">The most proposals the RPN keeps per image at test (model.det_head.rpn_post_nms_topk_test).</param>
    public static string Markdown(CocoSummary summary, string summaryDir, string proposalsFile, long proposalsPerImage)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Proposal recall (RPN)").AppendLine();
        sb.Append($"The RPN's test-time proposals (after its NMS, at most {proposalsPerImage} per image: model.det_head.rpn_post_nms_topk_test), " +
            $"class-agnostic as mmdet's proposal metric (COCOeval useCats = 0, maxDets {string.Join(", ", ProposalRecall.ProposalNums)}): " +
            $"[{Path.GetFileName(proposalsFile)}]({ConfusionMatrixReport.Link(summaryDir, proposalsFile)}).");
        int largest = ProposalRecall.ProposalNums[^1];
        if (proposalsPerImage < largest) sb.Append($" AR@{largest} sees no more than those {proposalsPerImage}.");
        sb.AppendLine().AppendLine();
        sb.AppendLine("| metric | value (%) |").AppendLine("|---|---|");
        foreach (var (name, stat) in ProposalRecall.Items) sb.AppendLine($"| {name} | {CocoReport.Fmt(summary.Stats[stat])} |");
        sb.AppendLine();
        return sb.ToString();
    }
}
