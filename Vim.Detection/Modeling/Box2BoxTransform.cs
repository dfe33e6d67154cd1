using Vim.Core.Engine;
using TorchSharp;
using static TorchSharp.torch;
using Vim.Detection.Structures;

namespace Vim.Detection.Modeling;

/// <summary>
/// The R-CNN box coder (Detectron2's Box2BoxTransform): a target box relative to a source box as
/// deltas (dx, dy, dw, dh) = (wx·Δcx/w, wy·Δcy/h, ww·log(w'/w), wh·log(h'/h)).
/// Decoding clamps dw and dh at <see cref="ScaleClamp"/> so exp() cannot overflow.
/// </summary>
public sealed class Box2BoxTransform
{
    /// <summary>Detectron2's default clamp, log(1000 / 16).</summary>
    public static readonly double DefaultScaleClamp = Math.Log(1000.0 / 16);

    public double WeightX { get; }
    public double WeightY { get; }
    public double WeightW { get; }
    public double WeightH { get; }
    public double ScaleClamp { get; }

    public Box2BoxTransform(double weightX, double weightY, double weightW, double weightH, double? scaleClamp = null)
    {
        foreach (var (name, w) in new[] { ("wx", weightX), ("wy", weightY), ("ww", weightW), ("wh", weightH) })
            if (!(w > 0) || double.IsInfinity(w))
                throw new ArgumentException($"Box2BoxTransform: weight {name} must be a positive finite number, got {w}.");
        ScaleClamp = scaleClamp ?? DefaultScaleClamp;
        if (!(ScaleClamp > 0))
            throw new ArgumentException($"Box2BoxTransform: scale clamp must be positive, got {ScaleClamp}.");
        (WeightX, WeightY, WeightW, WeightH) = (weightX, weightY, weightW, weightH);
    }

    /// <summary>(N, 4) deltas that turn each source box into its target box.</summary>
    public Tensor GetDeltas(Boxes source, Boxes target)
    {
        if (source.Count != target.Count)
            throw new ArgumentException($"Box2BoxTransform.GetDeltas: {source.Count} source boxes but {target.Count} targets.");
        using var scope = NewDisposeScope();
        var s = source.Tensor;
        var t = target.Tensor.to_type(s.dtype);
        var sw = s[.., 2] - s[.., 0];
        var sh = s[.., 3] - s[.., 1];
        var sx = s[.., 0] + 0.5 * sw;
        var sy = s[.., 1] + 0.5 * sh;
        var tw = t[.., 2] - t[.., 0];
        var th = t[.., 3] - t[.., 1];
        var tx = t[.., 0] + 0.5 * tw;
        var ty = t[.., 1] + 0.5 * th;
        var deltas = stack(new[]
        {
            WeightX * (tx - sx) / sw,
            WeightY * (ty - sy) / sh,
            WeightW * log(tw / sw),
            WeightH * log(th / sh),
        }, dim: 1);
        return deltas.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Applies (N, 4k) deltas (k boxes per row, e.g. one per class) to (N, 4) boxes; returns (N, 4k)
    /// in the deltas' dtype, float32 for half deltas.
    /// </summary>
    public Tensor ApplyDeltas(Tensor deltas, Boxes boxes)
    {
        if (deltas.dim() != 2 || deltas.shape[1] % 4 != 0 || deltas.shape[0] != boxes.Count)
            throw new ArgumentException(
                $"Box2BoxTransform.ApplyDeltas: deltas must be (N, 4k) with N = {boxes.Count}, got ({string.Join(", ", deltas.shape)}).");
        using var scope = NewDisposeScope();
        // Under autocast the heads' deltas come out in bf16 / fp16; decoding in that type would round the boxes to
        // 8 (bf16) significant bits, 4-pixel steps at 512-1024, so half deltas are decoded in float32 (as Detectron2).
        deltas = Autocast.WidenHalf(deltas);
        var b = boxes.Tensor.to_type(deltas.dtype);
        var w = (b[.., 2] - b[.., 0]).unsqueeze(1);
        var h = (b[.., 3] - b[.., 1]).unsqueeze(1);
        var cx = b[.., 0].unsqueeze(1) + 0.5 * w;
        var cy = b[.., 1].unsqueeze(1) + 0.5 * h;
        var k = deltas.shape[1] / 4;
        var d = deltas.view(-1, k, 4);
        var dx = d[.., .., 0] / WeightX;
        var dy = d[.., .., 1] / WeightY;
        var dw = (d[.., .., 2] / WeightW).clamp_max(ScaleClamp);
        var dh = (d[.., .., 3] / WeightH).clamp_max(ScaleClamp);
        var px = dx * w + cx;
        var py = dy * h + cy;
        var pw = exp(dw) * w;
        var ph = exp(dh) * h;
        var result = stack(new[] { px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph }, dim: 2);
        return result.reshape(deltas.shape[0], deltas.shape[1]).MoveToOuterDisposeScope();
    }
}
