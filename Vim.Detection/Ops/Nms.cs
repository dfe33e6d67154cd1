using Vim.Core.Engine;
using TorchSharp;
using static TorchSharp.torch;
using Vim.Core.Native;

namespace Vim.Detection.Ops;

/// <summary>
/// Non-maximum suppression (torchvision nms / batched_nms) on native CPU and CUDA kernels.
/// Boxes are visited by decreasing score (equal scores keep their input order); a box is dropped
/// when a kept box overlaps it with IoU strictly above the threshold.
/// </summary>
public static class Nms
{
    /// <param name="boxes">(N, 4) xyxy boxes of any floating dtype, compared in float32.</param>
    /// <param name="scores">(N) scores (half types are sorted as float32).</param>
    /// <returns>int64 indices of the kept boxes, by decreasing score, on the boxes' device.</returns>
    public static Tensor Apply(Tensor boxes, Tensor scores, double iouThreshold)
    {
        Validate(boxes, scores, iouThreshold);
        long n = boxes.shape[0];
        if (n == 0)
            return empty(0, ScalarType.Int64, boxes.device);
        using var scope = NewDisposeScope();
        bool cuda = DetectionNative.UsesCuda(boxes, "Nms");
        // Half scores are sorted as float32 (widening is exact, so the order and its ties are the input's).
        var sortable = Autocast.WidenHalf(scores);
        var order = sortable.sort(dim: 0, descending: true, stable: true).Indices.contiguous();
        var b = boxes.to_type(ScalarType.Float32).contiguous();
        // The CUDA kernel, too, writes the kept indices to host memory (detection_ops.h).
        var keep = empty(n, ScalarType.Int64);
        long count;
        int rc = cuda
            ? DetectionNative.NmsCuda(TensorMemory.Of(b), TensorMemory.Of(order), n, iouThreshold,
                TensorMemory.Of(keep), out count, IntPtr.Zero)
            : DetectionNative.NmsCpu(TensorMemory.Of(b), TensorMemory.Of(order), n, iouThreshold,
                TensorMemory.Of(keep), out count);
        GC.KeepAlive(b);
        GC.KeepAlive(order);
        GC.KeepAlive(keep);
        DetectionNative.Check(rc, "Nms");
        return keep[..(int)count].to(boxes.device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// NMS within each category only: boxes of different <paramref name="categories"/> never
    /// suppress each other. Each category's boxes are moved by its own offset so the groups
    /// cannot overlap (torchvision's coordinate trick; the offset step is the coordinate span + 1
    /// so negative coordinates are separated too), then one NMS runs over all.
    /// </summary>
    /// <returns>int64 indices of the kept boxes, by decreasing score.</returns>
    public static Tensor Batched(Tensor boxes, Tensor scores, Tensor categories, double iouThreshold)
    {
        Validate(boxes, scores, iouThreshold);
        ValidateCategories(boxes, categories, "Nms.Batched");
        if (boxes.shape[0] == 0)
            return empty(0, ScalarType.Int64, boxes.device);
        using var scope = NewDisposeScope();
        // The offsets reach (categories × span): in bf16 (8 significant bits) the shifted boxes of one category
        // would round together (steps of 128 at 20000) and suppress each other, so half types are offset in float32.
        var b = Autocast.WidenHalf(boxes);
        var span = b.max() - b.min() + 1;
        var offsets = categories.to_type(b.dtype) * span;
        var keep = Apply(b + offsets.unsqueeze(1), scores, iouThreshold);
        return keep.MoveToOuterDisposeScope();
    }

    /// <summary>Refuses <paramref name="categories"/> that are not one per box, on the boxes' device (<paramref name="caller"/> names the method).</summary>
    internal static void ValidateCategories(Tensor boxes, Tensor categories, string caller)
    {
        ArgumentNullException.ThrowIfNull(categories);
        if (categories.dim() != 1 || categories.shape[0] != boxes.shape[0])
            throw new ArgumentException(
                $"{caller}: categories must be (N) with N = {boxes.shape[0]}, got ({string.Join(", ", categories.shape)}).", nameof(categories));
        if (!RoiAlign.SameDevice(categories, boxes))
            throw new ArgumentException($"{caller}: categories are on {categories.device} but boxes on {boxes.device}.", nameof(categories));
    }

    private static void Validate(Tensor boxes, Tensor scores, double iouThreshold)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentNullException.ThrowIfNull(scores);
        if (boxes.dim() != 2 || boxes.shape[1] != 4 || !boxes.is_floating_point())
            throw new ArgumentException($"Nms: boxes must be a floating (N, 4) tensor, got {boxes.dtype} ({string.Join(", ", boxes.shape)}).", nameof(boxes));
        if (scores.dim() != 1 || scores.shape[0] != boxes.shape[0])
            throw new ArgumentException($"Nms: scores must be (N) with N = {boxes.shape[0]}, got ({string.Join(", ", scores.shape)}).", nameof(scores));
        if (!RoiAlign.SameDevice(scores, boxes))
            throw new ArgumentException($"Nms: scores are on {scores.device} but boxes on {boxes.device}.", nameof(scores));
        if (double.IsNaN(iouThreshold))
            throw new ArgumentException("Nms: the IoU threshold is NaN.", nameof(iouThreshold));
    }
}
