using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's training statistics (what its EventStorage records beside the losses), named as detectron2 names them:
/// rpn/num_pos_anchors and rpn/num_neg_anchors (RPN.losses), roi_head/num_fg_samples and roi_head/num_bg_samples
/// (label_and_sample_proposals; a later cascade stage's under stage{k}/, _match_and_label_boxes), fast_rcnn/cls_accuracy,
/// fast_rcnn/fg_cls_accuracy and fast_rcnn/false_negative (_log_classification_stats; under stage{k}/ in a cascade, its
/// name_scope), mask_rcnn/accuracy, mask_rcnn/false_positive and mask_rcnn/false_negative (mask_rcnn_loss). Counts are
/// means per image, the others fractions in [0, 1]. Each is a 0-dim float32 tensor without gradient: none contains
/// "loss", so the trainer logs them and never minimises them (<see cref="Vim.Core.Engine.TrainingTerms"/>). Where
/// detectron2 puts no scalar (no RoI; no foreground RoI for the foreground fractions; no mask RoI) the value is NaN,
/// which the trainer leaves out of its interval means.
/// </summary>
public static class DetectionStatistics
{
    /// <summary>Sampled anchors labelled 1 and 0 (<see cref="Rpn.LabelAndSampleAnchors"/>), per image.</summary>
    public static Dictionary<string, Tensor> Anchors(IReadOnlyList<Tensor> sampledLabels)
    {
        using var noGrad = no_grad();
        double positive = 0, negative = 0;
        foreach (var labels in sampledLabels)
        {
            using var scope = NewDisposeScope();
            positive += labels.eq(1).sum().item<long>();
            negative += labels.eq(0).sum().item<long>();
        }
        int images = Math.Max(sampledLabels.Count, 1);
        return new() { ["rpn/num_pos_anchors"] = Scalar(positive / images), ["rpn/num_neg_anchors"] = Scalar(negative / images) };
    }

    /// <summary>
    /// Foreground (class in [0, K)) and background (class K) RoIs per image of one stage's labelled RoIs; stage 0's are
    /// the sampled ones. Detectron2 names stage 0's without prefix and a later stage's under stage{k}/.
    /// </summary>
    public static Dictionary<string, Tensor> Samples(IReadOnlyList<Tensor> gtClasses, long numClasses, int stage)
    {
        using var noGrad = no_grad();
        double foreground = 0, background = 0;
        foreach (var classes in gtClasses)
        {
            using var scope = NewDisposeScope();
            foreground += classes.ge(0).logical_and(classes.lt(numClasses)).sum().item<long>();
            background += classes.eq(numClasses).sum().item<long>();
        }
        int images = Math.Max(gtClasses.Count, 1);
        string prefix = stage == 0 ? "" : $"stage{stage}/";
        return new()
        {
            [$"{prefix}roi_head/num_fg_samples"] = Scalar(foreground / images),
            [$"{prefix}roi_head/num_bg_samples"] = Scalar(background / images),
        };
    }

    /// <summary>
    /// Of R RoIs: the share whose arg-max class is their target (background included), the share of foreground RoIs whose
    /// arg-max is their class, and the share of foreground RoIs predicted background.
    /// </summary>
    /// <param name="scores">(R, K + 1) logits, background last.</param>
    /// <param name="gtClasses">(R) int64 targets, K for background.</param>
    /// <param name="stagePrefix">"" for one stage (StandardROIHeads), "stage{k}/" in a cascade.</param>
    public static Dictionary<string, Tensor> Classification(Tensor scores, Tensor gtClasses, string stagePrefix)
    {
        using var noGrad = no_grad();
        long rois = gtClasses.shape[0];
        double accuracy = double.NaN, foregroundAccuracy = double.NaN, falseNegative = double.NaN;
        if (rois > 0)
        {
            using var scope = NewDisposeScope();
            long background = scores.shape[1] - 1;
            var classes = gtClasses.to_type(ScalarType.Int64);
            var predicted = scores.detach().argmax(1);
            var foreground = classes.ge(0).logical_and(classes.lt(background));
            long foregroundCount = foreground.sum().item<long>();
            accuracy = (double)predicted.eq(classes).sum().item<long>() / rois;
            if (foregroundCount > 0)
            {
                foregroundAccuracy = (double)predicted[foreground].eq(classes[foreground]).sum().item<long>() / foregroundCount;
                falseNegative = (double)predicted[foreground].eq(background).sum().item<long>() / foregroundCount;
            }
        }
        return new()
        {
            [$"{stagePrefix}fast_rcnn/cls_accuracy"] = Scalar(accuracy),
            [$"{stagePrefix}fast_rcnn/fg_cls_accuracy"] = Scalar(foregroundAccuracy),
            [$"{stagePrefix}fast_rcnn/false_negative"] = Scalar(falseNegative),
        };
    }

    /// <summary>
    /// Pixels of the mask RoIs' ground-truth-class logits against their targets, a logit above 0 predicting foreground:
    /// the share predicted right, the share of background pixels predicted foreground, the share of foreground pixels
    /// predicted background (detectron2 divides by at least one pixel).
    /// </summary>
    /// <param name="classLogits">(R, M, M) each RoI's logits of its ground-truth class.</param>
    /// <param name="targets">(R, M, M) bool or 0/1 targets.</param>
    public static Dictionary<string, Tensor> Mask(Tensor classLogits, Tensor targets)
    {
        using var noGrad = no_grad();
        double accuracy = double.NaN, falsePositive = double.NaN, falseNegative = double.NaN;
        if (classLogits.shape[0] > 0)
        {
            using var scope = NewDisposeScope();
            var truth = targets.to_type(ScalarType.Bool);
            var wrong = classLogits.detach().gt(0).ne(truth);
            double pixels = truth.numel(), foreground = truth.sum().item<long>();
            accuracy = 1 - wrong.sum().item<long>() / Math.Max(pixels, 1);
            falsePositive = wrong.logical_and(truth.logical_not()).sum().item<long>() / Math.Max(pixels - foreground, 1);
            falseNegative = wrong.logical_and(truth).sum().item<long>() / Math.Max(foreground, 1);
        }
        return new()
        {
            ["mask_rcnn/accuracy"] = Scalar(accuracy),
            ["mask_rcnn/false_positive"] = Scalar(falsePositive),
            ["mask_rcnn/false_negative"] = Scalar(falseNegative),
        };
    }

    private static Tensor Scalar(double value) => tensor((float)value);
}
