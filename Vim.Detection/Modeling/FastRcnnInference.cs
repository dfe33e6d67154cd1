using TorchSharp;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's fast_rcnn_inference for one image: drop rows with non-finite boxes or scores, clip the boxes to the
/// image, keep every (RoI, class) pair whose score is strictly above the threshold with its box (a class-agnostic box
/// is shared by all classes of its RoI; with class-specific boxes each pair takes its own class's), NMS within each
/// class, and keep the best <c>topK</c>. With Soft-NMS settings (mmdet's test_cfg.rcnn.nms of type
/// soft_nms) the NMS within each class is <see cref="SoftNms"/> at the same IoU threshold, and the detections carry their
/// decayed scores, by which the best <c>topK</c> are kept.
/// </summary>
public static class FastRcnnInference
{
    /// <param name="boxes">(R, 4) class-agnostic or (R, 4K) class-specific predicted boxes (class k's in columns 4k to 4k + 3).</param>
    /// <param name="probabilities">(R, K + 1) class probabilities; the last column (background) is ignored.</param>
    /// <param name="topK">Detections kept per image; negative keeps all.</param>
    /// <param name="softNms">Soft-NMS's decay and minimum score; null for hard NMS.</param>
    /// <returns>The detections (boxes, classes, scores, by decreasing score) and, for each, the index of its source RoI.</returns>
    public static (Instances Detections, Tensor RoiIndex) SingleImage(Tensor boxes, Tensor probabilities, long imageHeight,
        long imageWidth, double scoreThreshold, double nmsThreshold, long topK, SoftNmsSettings? softNms = null)
    {
        if (probabilities.dim() != 2 || probabilities.shape[0] != boxes.shape[0] || probabilities.shape[1] < 2)
            throw new ArgumentException(
                $"FastRcnnInference: probabilities must be (R, K + 1) with R = {boxes.shape[0]}, got ({string.Join(", ", probabilities.shape)}).", nameof(probabilities));
        long numClasses = probabilities.shape[1] - 1;
        if (boxes.dim() != 2 || (boxes.shape[1] != 4 && boxes.shape[1] != 4 * numClasses))
            throw new ArgumentException(
                $"FastRcnnInference: boxes must be (R, 4) class-agnostic or (R, {4 * numClasses}) class-specific boxes, got ({string.Join(", ", boxes.shape)}).", nameof(boxes));
        bool classSpecific = boxes.shape[1] != 4;
        using var scope = NewDisposeScope();
        var roiIndex = arange(boxes.shape[0], ScalarType.Int64, boxes.device);
        var valid = isfinite(boxes).all(1).logical_and(isfinite(probabilities).all(1));
        if (!valid.all().item<bool>())
            (boxes, probabilities, roiIndex) = (boxes[valid], probabilities[valid], roiIndex[valid]);
        var scores = probabilities[.., ..^1];
        var clipped = new Boxes(boxes.reshape(-1, 4)).Clip(imageHeight, imageWidth).Tensor;
        var pairs = scores.gt(scoreThreshold).nonzero();
        var row = pairs[.., 0];
        var cls = pairs[.., 1];
        var keptBoxes = classSpecific ? clipped.view(-1, numClasses, 4)[row, cls] : clipped[row];
        var keptScores = scores[row, cls];
        // Both orders are by decreasing (decayed) score, so the best topK lead.
        Tensor keep;
        Tensor? decayed = null;
        if (softNms is null)
            keep = Nms.Batched(keptBoxes, keptScores, cls, nmsThreshold);
        else
            (keep, decayed) = SoftNms.Batched(keptBoxes, keptScores, cls, nmsThreshold, softNms);
        if (topK >= 0 && keep.shape[0] > topK)
            (keep, decayed) = (keep[..(int)topK], decayed?[..(int)topK]);
        var finalScores = decayed is null ? keptScores[keep] : decayed.to_type(keptScores.dtype);
        var result = new Instances(imageHeight, imageWidth, new Boxes(keptBoxes[keep].MoveToOuterDisposeScope()),
            cls[keep].MoveToOuterDisposeScope(), finalScores.MoveToOuterDisposeScope());
        return (result, roiIndex[row[keep]].MoveToOuterDisposeScope());
    }
}
