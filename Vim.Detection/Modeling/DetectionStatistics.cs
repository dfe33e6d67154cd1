using Vim.Core.Engine;
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
/// which the trainer leaves out of its interval means. Each is computed on its inputs' device without reading a value
/// back, so the statistics cost no host sync of their own: the trainer reads every term in one transfer.
/// </summary>
public static class DetectionStatistics
{
    /// <summary>Sampled anchors labelled 1 and 0 (<see cref="Rpn.LabelAndSampleAnchors"/>), per image.</summary>
    public static Dictionary<string, Tensor> Anchors(IReadOnlyList<Tensor> sampledLabels)
    {
        if (sampledLabels.Count == 0)
            return new() { ["rpn/num_pos_anchors"] = Scalar(0, CPU), ["rpn/num_neg_anchors"] = Scalar(0, CPU) };
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var labels = cat(sampledLabels.ToArray(), 0);
        return Outer(new()
        {
            ["rpn/num_pos_anchors"] = Ratio(labels.eq(1).sum(), sampledLabels.Count),
            ["rpn/num_neg_anchors"] = Ratio(labels.eq(0).sum(), sampledLabels.Count),
        });
    }

    /// <summary>
    /// Foreground (class in [0, K)) and background (class K) RoIs per image of one stage's labelled RoIs; stage 0's are
    /// the sampled ones. Detectron2 names stage 0's without prefix and a later stage's under stage{k}/.
    /// </summary>
    public static Dictionary<string, Tensor> Samples(IReadOnlyList<Tensor> gtClasses, long numClasses, int stage)
    {
        string prefix = stage == 0 ? "" : $"stage{stage}/";
        string foregroundName = $"{prefix}roi_head/num_fg_samples", backgroundName = $"{prefix}roi_head/num_bg_samples";
        if (gtClasses.Count == 0) return new() { [foregroundName] = Scalar(0, CPU), [backgroundName] = Scalar(0, CPU) };
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var classes = cat(gtClasses.ToArray(), 0);
        return Outer(new()
        {
            [foregroundName] = Ratio((classes.ge(0) & classes.lt(numClasses)).sum(), gtClasses.Count),
            [backgroundName] = Ratio(classes.eq(numClasses).sum(), gtClasses.Count),
        });
    }

    /// <summary>
    /// Of R RoIs: the share whose arg-max class is their target (background included), the share of foreground RoIs whose
    /// arg-max is their class, and the share of foreground RoIs predicted background (0 / 0, NaN, without a foreground RoI).
    /// </summary>
    /// <param name="scores">(R, K + 1) logits, background last.</param>
    /// <param name="gtClasses">(R) int64 targets, K for background.</param>
    /// <param name="stagePrefix">"" for one stage (StandardROIHeads), "stage{k}/" in a cascade.</param>
    public static Dictionary<string, Tensor> Classification(Tensor scores, Tensor gtClasses, string stagePrefix)
    {
        string accuracyName = stagePrefix + TrainingTerms.ClassifierAccuracy, foregroundAccuracyName = $"{stagePrefix}fast_rcnn/fg_cls_accuracy",
            falseNegativeName = $"{stagePrefix}fast_rcnn/false_negative";
        long rois = gtClasses.shape[0];
        if (rois == 0)
            return new()
            {
                [accuracyName] = Scalar(double.NaN, scores.device), [foregroundAccuracyName] = Scalar(double.NaN, scores.device),
                [falseNegativeName] = Scalar(double.NaN, scores.device),
            };
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long background = scores.shape[1] - 1;
        var classes = gtClasses.to_type(ScalarType.Int64).to(scores.device);
        var predicted = scores.detach().argmax(1);
        var foreground = classes.ge(0) & classes.lt(background);
        var correct = predicted.eq(classes);
        var foregroundCount = foreground.sum();
        return Outer(new()
        {
            [accuracyName] = Ratio(correct.sum(), rois),
            [foregroundAccuracyName] = Ratio((correct & foreground).sum(), foregroundCount),
            [falseNegativeName] = Ratio((predicted.eq(background) & foreground).sum(), foregroundCount),
        });
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
        if (classLogits.shape[0] == 0)
            return new()
            {
                ["mask_rcnn/accuracy"] = Scalar(double.NaN, classLogits.device), ["mask_rcnn/false_positive"] = Scalar(double.NaN, classLogits.device),
                ["mask_rcnn/false_negative"] = Scalar(double.NaN, classLogits.device),
            };
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var truth = targets.to_type(ScalarType.Bool).to(classLogits.device);
        var wrong = classLogits.detach().gt(0).ne(truth);
        long pixels = truth.numel();
        var foreground = truth.sum();
        return Outer(new()
        {
            ["mask_rcnn/accuracy"] = (1 - Ratio64(wrong.sum(), Math.Max(pixels, 1))).to_type(ScalarType.Float32),
            ["mask_rcnn/false_positive"] = Ratio((wrong & ~truth).sum(), (pixels - foreground).clamp_min(1)),
            ["mask_rcnn/false_negative"] = Ratio((wrong & truth).sum(), foreground.clamp_min(1)),
        });
    }

    // Quotients in double, as detectron2's Python floats, rounded once to the float32 that is logged.
    private static Tensor Ratio(Tensor count, double divisor) => Ratio64(count, divisor).to_type(ScalarType.Float32);

    private static Tensor Ratio(Tensor count, Tensor divisor) => count.to_type(ScalarType.Float64).div(divisor.to_type(ScalarType.Float64)).to_type(ScalarType.Float32);

    private static Tensor Ratio64(Tensor count, double divisor) => count.to_type(ScalarType.Float64).div(divisor);

    private static Dictionary<string, Tensor> Outer(Dictionary<string, Tensor> statistics)
    {
        foreach (var value in statistics.Values) value.MoveToOuterDisposeScope();
        return statistics;
    }

    private static Tensor Scalar(double value, Device device) => tensor((float)value, device: device);
}
