using System.Globalization;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Data.Transforms;
using Vim.Detection.Modeling;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>One test view of an image: the normalised test-resized image (1, 3, H, W), maybe padded, and its valid (content) size.</summary>
public sealed record DetectionView(Tensor Image, long ContentHeight, long ContentWidth);

/// <summary>
/// One pass of test-time augmentation: a view, maybe flipped, run through the detector; its RoI features (for the masks of
/// the merged boxes) and its detections with boxes in the original image's coordinates.
/// </summary>
public sealed record DetectionPass(bool Flipped, long ContentHeight, long ContentWidth, List<Tensor> RoiFeatures, Instances Detections);

/// <summary>
/// Test-time augmentation of Cascade Mask R-CNN (model.det_test), as detectron2's GeneralizedRCNNWithTTA: every view of
/// <see cref="TestPipelines"/> (the original image resized for each scale), and with flip its mirror image, is a pass;
/// each pass's boxes are mapped back to the original image (un-flipped within the view, then scaled by original / view
/// size), all passes' boxes are merged per class by NMS at nms_iou and the best max_per_img kept (detectron2 runs its
/// fast_rcnn_inference on the union with one-hot scores; mmdet's DetTTAModel runs batched_nms, the same rule; with
/// nms_type soft_nms, mmdet's other tta_cfg.nms type, Soft-NMS rescores instead and its scores are the output's); the mask
/// head then runs on the merged boxes in every pass (mapped into that pass's view, the flipped passes' probabilities
/// mirrored back) and the probabilities are averaged before one paste at the original size. detectron2 recomputes each
/// pass's features for the masks; we keep them from the box pass (memory for time: one backbone run per pass).
/// With the defaults (no flip, the one scale 1.0) <see cref="Predict"/> is the detector's plain predict path.
/// </summary>
public static class DetectionTestTimeAugmentation
{
    /// <summary>Refuses model.det_test settings prediction cannot run with, naming the key (checked when a task's data is built).</summary>
    public static void CheckSettings(DetectionTestConfig test, int testSize)
    {
        if (test.Scales.Count == 0)
            throw new VimException("model.det_test.scales must hold at least one ratio of data.crop_size (e.g. [1.0])");
        foreach (var scale in test.Scales)
        {
            if (!(scale > 0) || double.IsInfinity(scale))
                throw new VimException($"model.det_test.scales must be positive ratios of data.crop_size, got {Text(scale)}");
            if ((int)(testSize * scale) < 1)
                throw new VimException($"model.det_test.scales: ratio {Text(scale)} of data.crop_size {testSize} leaves no pixel");
        }
        if (test.Scales.Distinct().Count() != test.Scales.Count)
            throw new VimException($"model.det_test.scales lists a ratio twice ([{string.Join(", ", test.Scales.Select(Text))}]); each is one pass");
        if (!(test.NmsIou >= 0 && test.NmsIou <= 1))
            throw new VimException($"model.det_test.nms_iou must be within [0, 1], got {Text(test.NmsIou)}");
        if (test.MaxPerImg < 1)
            throw new VimException($"model.det_test.max_per_img must be at least 1, got {test.MaxPerImg}");
        _ = MergeSoftNms(test);
    }

    /// <summary>The merge's per-class NMS as model.det_test's nms_type and soft_nms_* keys say (null: hard NMS, the default).</summary>
    public static SoftNmsSettings? MergeSoftNms(DetectionTestConfig test) =>
        SoftNmsSettings.FromConfig(test.NmsType, test.SoftNmsMethod, test.SoftNmsSigma, test.SoftNmsMinScore, "model.det_test.");

    /// <summary>Whether the settings ask for one plain pass (no flip, the one scale 1.0): prediction is then the detector's own.</summary>
    public static bool IsPlain(DetectionTestConfig test) => !test.Flip && test.Scales is [1.0];

    /// <summary>
    /// The test pipeline of each model.det_test.scales ratio, each of the original image: <paramref name="testPipeline"/>
    /// (data.test_pipeline) with its resize scale × the ratio, else the LSJ test resize (long side into data.crop_size,
    /// keeping the ratio) at crop_size × ratio, truncated to whole pixels. TTA therefore derives its views from the config's
    /// test pipeline; flips mirror the views themselves (<see cref="Passes"/>).
    /// </summary>
    public static IReadOnlyList<TransformPipeline> TestPipelines(int testSize, DetectionTestConfig test, IReadOnlyList<TransformStepConfig>? testPipeline = null)
    {
        CheckSettings(test, testSize);
        if (testPipeline is not null) DataPipelines.CheckTestSteps(testPipeline, TaskKind.Detection, test.Scales);
        return test.Scales.Select(ratio => DataPipelines.DetectionTesting(testPipeline, testSize, ratio)).ToList();
    }

    /// <summary>
    /// Boxes a pass predicted (in its view's content coordinates, the view mirrored when <paramref name="flipped"/>) in the
    /// original image's coordinates: un-flipped within the view's width, then scaled by original / view size per axis.
    /// </summary>
    public static Boxes ToOriginal(Boxes boxes, bool flipped, long contentHeight, long contentWidth, long originalHeight, long originalWidth)
    {
        var unflipped = flipped ? boxes.FlipHorizontal(contentWidth) : boxes;
        return unflipped.Scale((double)originalWidth / contentWidth, (double)originalHeight / contentHeight);
    }

    /// <summary>The inverse of <see cref="ToOriginal"/>: boxes of the original image in a pass's view (mirrored when flipped).</summary>
    public static Boxes FromOriginal(Boxes boxes, bool flipped, long contentHeight, long contentWidth, long originalHeight, long originalWidth)
    {
        var scaled = boxes.Scale((double)contentWidth / originalWidth, (double)contentHeight / originalHeight);
        return flipped ? scaled.FlipHorizontal(contentWidth) : scaled;
    }

    /// <summary>
    /// Runs every pass of <paramref name="views"/> (one per model.det_test.scales ratio, in order; each also flipped with
    /// model.det_test.flip): the detector's boxes mapped to the original image. The model must be in eval mode; the
    /// tensors belong to the caller's dispose scope.
    /// </summary>
    public static List<DetectionPass> Passes(CascadeMaskRcnn model, IReadOnlyList<DetectionView> views, long originalHeight, long originalWidth,
        DetectionTestConfig test)
    {
        if (views.Count != test.Scales.Count)
            throw new ArgumentException($"{views.Count} test views for {test.Scales.Count} model.det_test.scales", nameof(views));
        var passes = new List<DetectionPass>();
        foreach (var view in views)
        {
            // Only the content is mirrored: the loader's padding must stay right and bottom, where the detector pads.
            var content = view.Image[.., .., ..(int)view.ContentHeight, ..(int)view.ContentWidth];
            foreach (bool flipped in test.Flip ? new[] { false, true } : new[] { false })
            {
                var (features, found) = model.DetectBoxes(flipped ? content.flip(3) : content, (view.ContentHeight, view.ContentWidth));
                var boxes = ToOriginal(found.Boxes, flipped, view.ContentHeight, view.ContentWidth, originalHeight, originalWidth);
                passes.Add(new DetectionPass(flipped, view.ContentHeight, view.ContentWidth, features,
                    new Instances(originalHeight, originalWidth, boxes, found.Classes, found.Scores)));
            }
        }
        return passes;
    }

    /// <summary>
    /// All passes' detections (boxes in the original image) merged as detectron2's _merge_detections: one row per detection
    /// with its score in its class's column, then fast_rcnn_inference (boxes clipped to the image, NMS within each class at
    /// <paramref name="nmsIou"/>, the best <paramref name="maxPerImage"/> by score). With <paramref name="softNms"/> the NMS
    /// within each class is Soft-NMS over the pooled passes' boxes (mmdet's tta_cfg.nms of type soft_nms): the merged
    /// detections carry their decayed scores, by which the best <paramref name="maxPerImage"/> are kept. Returns the merged
    /// detections and, for each, the index of its source row in the passes' detections taken in order.
    /// </summary>
    public static (Instances Merged, Tensor SourceRow) Merge(IReadOnlyList<Instances> passes, long originalHeight, long originalWidth, long numClasses,
        double nmsIou, int maxPerImage, SoftNmsSettings? softNms = null)
    {
        if (passes.Count == 0) throw new ArgumentException("at least one pass is needed", nameof(passes));
        using var scope = NewDisposeScope();
        var boxes = cat(passes.Select(p => p.Boxes.Tensor).ToArray(), 0);
        var classes = cat(passes.Select(p => p.Classes!).ToArray(), 0).to_type(ScalarType.Int64);
        var scores = cat(passes.Select(p => p.Scores!).ToArray(), 0);
        // The background column stays 0, and so does every other class's: no row can survive under a class it was not given.
        var oneHot = zeros(new[] { boxes.shape[0], numClasses + 1 }, scores.dtype, scores.device).scatter_(1, classes.unsqueeze(1), scores.unsqueeze(1));
        var (merged, source) = FastRcnnInference.SingleImage(boxes, oneHot, originalHeight, originalWidth, scoreThreshold: 0, nmsIou, maxPerImage, softNms);
        merged.Boxes.Tensor.MoveToOuterDisposeScope();
        merged.Classes!.MoveToOuterDisposeScope();
        merged.Scores!.MoveToOuterDisposeScope();
        return (merged, source.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The detections of one image at its original size from its test views (<see cref="TestPipelines"/>; one per
    /// model.det_test.scales ratio), as model.det_test says: with the defaults the detector's plain predict path, else
    /// the passes merged (<see cref="Merge"/>), masks averaged over the passes at the merged boxes and pasted once
    /// (<see cref="DetectionPostprocessor"/>). The model must be in eval mode; the tensors belong to the caller's dispose scope.
    /// </summary>
    public static Instances Predict(CascadeMaskRcnn model, IReadOnlyList<DetectionView> views, long originalHeight, long originalWidth, DetectionTestConfig test)
    {
        if (IsPlain(test))
        {
            if (views.Count != 1) throw new ArgumentException($"{views.Count} test views for the one model.det_test.scales ratio", nameof(views));
            return model.Predict(views[0].Image, [(views[0].ContentHeight, views[0].ContentWidth)], [(originalHeight, originalWidth)])[0];
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var passes = Passes(model, views, originalHeight, originalWidth, test);
        // Soft-NMS keeps boxes hard NMS would drop, at decayed scores: those are the scores reported, and the masks below are
        // predicted at exactly the merged boxes, whatever their number.
        var (merged, _) = Merge(passes.Select(p => p.Detections).ToList(), originalHeight, originalWidth, model.RoiHeads.Settings.NumClasses,
            test.NmsIou, test.MaxPerImg, MergeSoftNms(test));
        Tensor? masks = null;
        if (model.MaskOn)
        {
            foreach (var pass in passes)
            {
                var boxes = FromOriginal(merged.Boxes, pass.Flipped, pass.ContentHeight, pass.ContentWidth, originalHeight, originalWidth);
                var probabilities = model.MaskProbabilities(pass.RoiFeatures, new Instances(pass.ContentHeight, pass.ContentWidth, boxes, merged.Classes));
                // A mask of a mirrored view is the mirror of the original's (its grid spans the mirrored box).
                if (pass.Flipped) probabilities = probabilities.flip(2);
                masks = masks is null ? probabilities : masks.add_(probabilities);
            }
            masks = masks!.div_(passes.Count);
        }
        using var paste = StageProfiler.Measure(DetectionStages.Paste);
        var found = DetectionPostprocessor.ToOutputSize(new Instances(originalHeight, originalWidth, merged.Boxes, merged.Classes, merged.Scores, masks),
            originalHeight, originalWidth);
        found.Boxes.Tensor.MoveToOuterDisposeScope();
        found.Classes?.MoveToOuterDisposeScope();
        found.Scores?.MoveToOuterDisposeScope();
        found.Masks?.MoveToOuterDisposeScope();
        return found;
    }

    private static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);
}
