using Vim.Core.Engine;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's detector_postprocess: detections made on the network's input image (its valid,
/// resized size) are mapped to the original image size — boxes scaled per axis and clipped, boxes
/// left empty dropped, and M × M mask probabilities pasted into full-size binary masks. Boxes, scores
/// and mask probabilities are float32 from here on, also when the heads ran under autocast.
/// </summary>
public static class DetectionPostprocessor
{
    /// <param name="detections">Detections whose image size is the network input's valid size; masks (N, M, M) probabilities or none.</param>
    /// <returns>Detections in output coordinates; masks (N, outputHeight, outputWidth) bool when present.</returns>
    public static Instances ToOutputSize(Instances detections, long outputHeight, long outputWidth, double maskThreshold = 0.5)
    {
        ArgumentNullException.ThrowIfNull(detections);
        if (outputHeight < 1 || outputWidth < 1)
            throw new ArgumentException($"DetectionPostprocessor: output size must be positive, got {outputHeight}x{outputWidth}.");
        using var scope = NewDisposeScope();
        double scaleX = (double)outputWidth / detections.ImageWidth, scaleY = (double)outputHeight / detections.ImageHeight;
        // Every detection leaves the detector here. Under autocast the heads compute in a half type; callers (evaluation,
        // COCO results, drawing) get float32 boxes, scores and mask probabilities, as from an fp32 run.
        var boxes = new Boxes(Autocast.WidenHalf(detections.Boxes.Tensor)).Scale(scaleX, scaleY).Clip(outputHeight, outputWidth);
        var scores = detections.Scores is null ? null : Autocast.WidenHalf(detections.Scores);
        var maskProbabilities = detections.Masks is null ? null : Autocast.WidenHalf(detections.Masks);
        var keep = boxes.NonEmpty();
        var kept = boxes.Select(keep);
        var masks = maskProbabilities is null ? null : MaskPaster.Paste(maskProbabilities[keep], kept.Tensor, outputHeight, outputWidth, maskThreshold);
        var result = new Instances(outputHeight, outputWidth, kept, detections.Classes?[keep], scores?[keep], masks);
        result.Boxes.Tensor.MoveToOuterDisposeScope();
        result.Classes?.MoveToOuterDisposeScope();
        result.Scores?.MoveToOuterDisposeScope();
        result.Masks?.MoveToOuterDisposeScope();
        return result;
    }
}
