using NUnit.Framework;
using Vim.Core.Engine;

namespace Vim.Tests.Engine;

/// <summary>
/// The console progress line against lines written out by hand: MMEngine's LoggerHook prints every logged term with lr and a
/// scheduled momentum; ours prints the losses, the headline accuracies (mmseg's acc_seg, each cascade stage's classifier
/// accuracy, mmdet's s{k}.acc) and the momentum where a scheduler moves it, and breaks a line longer than 120 columns between
/// items, never inside one.
/// </summary>
public class ProgressLineTests
{
    [Test]
    public void ASegmentationLineFitsOneLineAndTheMomentumGoesBesideTheLr()
    {
        var terms = new Dictionary<string, double> { ["loss_ce"] = 0.4, ["decode.acc_seg"] = 87.25 };
        Assert.That(ProgressLine.Layout(20, 100, 0.5, terms, 1e-4, null, 0.5, 0.05, 8, TimeSpan.FromSeconds(80)),
            Is.EqualTo("iter 20/100 | loss 0.5 (loss_ce 0.4, decode.acc_seg 87.25) | lr 1e-4 | 2 it/s, 16 img/s | data 10% | ETA 0:01:20"));
        // 113 columns, and "momentum 0.85 | " (16) beside the lr: "… data 10% |" ends at 117, so "ETA 0:01:20" (+12) goes on.
        Assert.That(ProgressLine.Layout(20, 100, 0.5, terms, 1e-4, 0.85, 0.5, 0.05, 8, TimeSpan.FromSeconds(80)),
            Is.EqualTo("iter 20/100 | loss 0.5 (loss_ce 0.4, decode.acc_seg 87.25) | lr 1e-4 | momentum 0.85 | 2 it/s, 16 img/s | data 10% |\n    ETA 0:01:20"));
        Assert.That(ProgressLine.Layout(3, 10, 0.25, new Dictionary<string, double>(), 0.02, null, 1, 0.5, 2, TimeSpan.Zero),
            Is.EqualTo("iter 3/10 | loss 0.25 | lr 2e-2 | 1 it/s, 2 img/s | data 50% | ETA 0:00:00"), "no terms: no empty parentheses");
    }

    /// <summary>
    /// A Cascade Mask R-CNN's logged terms: its nine losses and its three stages' classifier accuracies are on the line, the
    /// RPN and RoI counts, foreground accuracies, false negatives and mask statistics are not. Broken by hand at 120 columns:
    /// the first line's 97 columns plus "loss_box_reg_stage0 0.1877," (27) would make 124, so it starts the second, indented by
    /// four; the second and third stop at 94 (+27 = 121); the fourth runs to "momentum 0.9 |" (114), and "2.5 it/s, 20 img/s |"
    /// (20 more) takes the fifth.
    /// </summary>
    [Test]
    public void ACascadeDetectorsLineKeepsTheStageAccuraciesAndBreaksBetweenItems()
    {
        var logged = new Dictionary<string, double>
        {
            ["loss_rpn_cls"] = 0.0512, ["loss_rpn_loc"] = 0.0331, ["rpn/num_pos_anchors"] = 31, ["rpn/num_neg_anchors"] = 225,
            ["loss_cls_stage0"] = 0.2104, ["loss_box_reg_stage0"] = 0.1877, ["stage0/roi_head/num_fg_samples"] = 40,
            ["stage0/fast_rcnn/cls_accuracy"] = 0.9375, ["stage0/fast_rcnn/fg_cls_accuracy"] = 0.6, ["stage0/fast_rcnn/false_negative"] = 0.3,
            ["loss_cls_stage1"] = 0.1021, ["loss_box_reg_stage1"] = 0.1513, ["stage1/fast_rcnn/cls_accuracy"] = 0.9502,
            ["loss_cls_stage2"] = 0.0511, ["loss_box_reg_stage2"] = 0.0821, ["stage2/fast_rcnn/cls_accuracy"] = 0.9613,
            ["loss_mask"] = 0.2513, ["mask_rcnn/accuracy"] = 0.91, ["mask_rcnn/false_negative"] = 0.05,
        };
        var shown = logged.Where(t => TrainingTerms.OnProgressLine(t.Key)).ToDictionary();
        Assert.That(shown.Keys, Is.EqualTo(new[]
        {
            "loss_rpn_cls", "loss_rpn_loc", "loss_cls_stage0", "loss_box_reg_stage0", "stage0/fast_rcnn/cls_accuracy", "loss_cls_stage1",
            "loss_box_reg_stage1", "stage1/fast_rcnn/cls_accuracy", "loss_cls_stage2", "loss_box_reg_stage2", "stage2/fast_rcnn/cls_accuracy", "loss_mask",
        }));
        Assert.That(TrainingTerms.OnProgressLine("fast_rcnn/cls_accuracy"), Is.True, "a one-stage head's accuracy");
        Assert.That(TrainingTerms.OnProgressLine("aux.acc_seg"), Is.True);

        var line = ProgressLine.Layout(1200, 90000, 1.1203, shown, 2e-4, 0.9, 0.4, 0.02, 8, TimeSpan.FromHours(62.5));
        Assert.That(line, Is.EqualTo(
            "iter 1200/90000 | loss 1.1203 (loss_rpn_cls 0.0512, loss_rpn_loc 0.0331, loss_cls_stage0 0.2104,\n" +
            "    loss_box_reg_stage0 0.1877, stage0/fast_rcnn/cls_accuracy 0.9375, loss_cls_stage1 0.1021,\n" +
            "    loss_box_reg_stage1 0.1513, stage1/fast_rcnn/cls_accuracy 0.9502, loss_cls_stage2 0.0511,\n" +
            "    loss_box_reg_stage2 0.0821, stage2/fast_rcnn/cls_accuracy 0.9613, loss_mask 0.2513) | lr 2e-4 | momentum 0.9 |\n" +
            "    2.5 it/s, 20 img/s | data 5% | ETA 62:30:00"));
        Assert.That(line.Split('\n'), Has.All.Length.LessThanOrEqualTo(ProgressLine.Width));
    }
}
