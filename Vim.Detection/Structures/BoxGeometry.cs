using static TorchSharp.torch;

namespace Vim.Detection.Structures;

/// <summary>Pairwise overlap measures between two box sets (Detectron2's pairwise_iou / pairwise_ioa).</summary>
public static class BoxGeometry
{
    /// <summary>(N, M) intersection areas; 0 where the boxes do not overlap.</summary>
    public static Tensor PairwiseIntersection(Boxes a, Boxes b)
    {
        var ta = a.Tensor;
        var tb = b.Tensor;
        var width = minimum(ta[.., TensorIndex.None, 2], tb[TensorIndex.None, .., 2])
            - maximum(ta[.., TensorIndex.None, 0], tb[TensorIndex.None, .., 0]);
        var height = minimum(ta[.., TensorIndex.None, 3], tb[TensorIndex.None, .., 3])
            - maximum(ta[.., TensorIndex.None, 1], tb[TensorIndex.None, .., 1]);
        return width.clamp_min(0) * height.clamp_min(0);
    }

    /// <summary>
    /// (N, M) intersection over union. Pairs that do not intersect get exactly 0, which also keeps
    /// degenerate (zero-area) boxes from producing 0/0.
    /// </summary>
    public static Tensor PairwiseIou(Boxes a, Boxes b)
    {
        using var scope = NewDisposeScope();
        var inter = PairwiseIntersection(a, b);
        var union = a.Area()[.., TensorIndex.None] + b.Area()[TensorIndex.None, ..] - inter;
        var iou = where(inter.gt(0), inter / union, zeros_like(inter));
        return iou.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// (N, M) intersection over the area of the second set's box (intersection over "area of b"),
    /// used to ignore proposals that lie inside crowd regions. 0 where there is no intersection.
    /// </summary>
    public static Tensor PairwiseIoa(Boxes a, Boxes b)
    {
        using var scope = NewDisposeScope();
        var inter = PairwiseIntersection(a, b);
        var ioa = where(inter.gt(0), inter / b.Area()[TensorIndex.None, ..], zeros_like(inter));
        return ioa.MoveToOuterDisposeScope();
    }
}
