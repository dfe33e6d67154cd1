using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>Box-regression losses, summed over all boxes (callers normalise).</summary>
public static class BoxRegressionLoss
{
    /// <summary>fvcore's and detectron2's ε, added to every denominator of the IoU losses.</summary>
    private const double Eps = 1e-7;

    /// <summary>
    /// Smooth L1 (Huber with slope 1): 0.5·d²/β where |d| &lt; β, |d| − 0.5·β elsewhere; β = 0 is
    /// plain L1 (Detectron2's smooth_l1_loss convention, the RPN default).
    /// </summary>
    public static Tensor SmoothL1Sum(Tensor input, Tensor target, double beta)
    {
        if (beta < 0)
            throw new ArgumentException($"BoxRegressionLoss: smooth-L1 beta must be >= 0, got {beta}.", nameof(beta));
        using var scope = NewDisposeScope();
        var diff = (input - target).abs();
        var loss = beta < 1e-5 ? diff : where(diff.lt(beta), 0.5 * diff * diff / beta, diff - 0.5 * beta);
        return loss.sum().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One head's box-regression loss over its matched (R, 4) rows, summed (detectron2's _dense_box_regression_loss and
    /// FastRCNNOutputLayers.box_reg_loss, before their normalisation): smooth-L1 of <paramref name="deltas"/> against the deltas
    /// <paramref name="coder"/> takes <paramref name="sources"/> to <paramref name="targets"/>, or an IoU loss of the boxes
    /// <paramref name="deltas"/> decode to. The RPN and every box stage call it, so the loss types mean the same in both.
    /// </summary>
    public static Tensor Sum(BoxRegressionLossType type, double smoothL1Beta, Box2BoxTransform coder, Tensor deltas, Boxes sources, Tensor targets)
    {
        if (type == BoxRegressionLossType.SmoothL1)
        {
            var targetDeltas = coder.GetDeltas(sources, new Boxes(targets));
            // Under autocast the predictions widen to the targets' float32 (as torch promotes a half minus a float): rounding
            // the targets to half would move them by up to a half-precision step.
            return SmoothL1Sum(Autocast.WidenHalf(deltas), targetDeltas, smoothL1Beta);
        }
        var decoded = coder.ApplyDeltas(deltas, sources);
        return IouLossSum(type, decoded, targets.to_type(decoded.dtype));
    }

    /// <summary>
    /// The IoU-based losses of (R, 4) xyxy box pairs, summed: detectron2 computes them on the boxes the predicted deltas
    /// decode to (_dense_box_regression_loss, FastRCNNOutputLayers.box_reg_loss), mmdet with reg_decoded_bbox=True.
    /// </summary>
    public static Tensor IouLossSum(BoxRegressionLossType type, Tensor predicted, Tensor target) =>
        type switch
        {
            BoxRegressionLossType.Giou => Giou(predicted, target),
            BoxRegressionLossType.Diou => Diou(predicted, target, aspectTerm: false),
            BoxRegressionLossType.Ciou => Diou(predicted, target, aspectTerm: true),
            _ => throw new ArgumentException($"BoxRegressionLoss: {type} is not an IoU loss.", nameof(type)),
        };

    /// <summary>fvcore's giou_loss: 1 − IoU + (C − U) / C, C the smallest enclosing box's area, U the union.</summary>
    private static Tensor Giou(Tensor predicted, Tensor target)
    {
        using var scope = NewDisposeScope();
        var (intersection, union, enclosing) = Overlap(predicted, target);
        var iou = intersection / (union + Eps);
        var enclosingArea = enclosing[.., 2] * enclosing[.., 3];
        var giou = iou - (enclosingArea - union) / (enclosingArea + Eps);
        return (1 - giou).sum().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// detectron2's diou_loss, 1 − IoU + ρ² / c² (ρ the distance of the centres, c the enclosing box's diagonal), and
    /// with <paramref name="aspectTerm"/> its ciou_loss, which adds α·v, v = 4/π²·(atan(w_gt/h_gt) − atan(w/h))² and
    /// α = v / (1 − IoU + v) held constant in the backward pass as detectron2 computes it under no_grad.
    /// </summary>
    private static Tensor Diou(Tensor predicted, Tensor target, bool aspectTerm)
    {
        using var scope = NewDisposeScope();
        var (intersection, union, enclosing) = Overlap(predicted, target);
        var iou = intersection / (union + Eps);
        var diagonal = enclosing[.., 2].square() + enclosing[.., 3].square() + Eps;
        var centreDx = (predicted[.., 0] + predicted[.., 2] - target[.., 0] - target[.., 2]) / 2;
        var centreDy = (predicted[.., 1] + predicted[.., 3] - target[.., 1] - target[.., 3]) / 2;
        var loss = 1 - iou + (centreDx.square() + centreDy.square()) / diagonal;
        if (aspectTerm)
        {
            var width = predicted[.., 2] - predicted[.., 0];
            var height = predicted[.., 3] - predicted[.., 1];
            var gtWidth = target[.., 2] - target[.., 0];
            var gtHeight = target[.., 3] - target[.., 1];
            var v = 4 / (Math.PI * Math.PI) * (atan(gtWidth / gtHeight) - atan(width / height)).square();
            Tensor alpha;
            using (no_grad())
                alpha = v / (1 - iou + v + Eps);
            loss = loss + alpha * v;
        }
        return loss.sum().MoveToOuterDisposeScope();
    }

    /// <summary>Per pair: the intersection's area, the union's, and the enclosing box's (x1, y1, width, height).</summary>
    private static (Tensor Intersection, Tensor Union, Tensor Enclosing) Overlap(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var innerWidth = (minimum(a[.., 2], b[.., 2]) - maximum(a[.., 0], b[.., 0])).clamp_min(0);
        var innerHeight = (minimum(a[.., 3], b[.., 3]) - maximum(a[.., 1], b[.., 1])).clamp_min(0);
        var intersection = innerWidth * innerHeight;
        var areaA = (a[.., 2] - a[.., 0]) * (a[.., 3] - a[.., 1]);
        var areaB = (b[.., 2] - b[.., 0]) * (b[.., 3] - b[.., 1]);
        var union = areaA + areaB - intersection;
        var x1 = minimum(a[.., 0], b[.., 0]);
        var y1 = minimum(a[.., 1], b[.., 1]);
        var enclosing = stack(new[] { x1, y1, maximum(a[.., 2], b[.., 2]) - x1, maximum(a[.., 3], b[.., 3]) - y1 }, 1);
        return (intersection.MoveToOuterDisposeScope(), union.MoveToOuterDisposeScope(), enclosing.MoveToOuterDisposeScope());
    }
}
