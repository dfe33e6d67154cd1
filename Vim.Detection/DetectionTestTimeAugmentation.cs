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
/// One test view of a batch of images: (B, 3, H, W), each image's content top left (zeros, or the test pipeline's padding,
/// right and bottom), and each image's content size.
/// </summary>
public sealed record DetectionViewBatch(Tensor Images, IReadOnlyList<(long Height, long Width)> ContentSizes);

/// <summary>
/// One pass of test-time augmentation: a view, maybe flipped, run through the detector; its RoI features (for the masks of
/// the merged boxes) and its detections with boxes in the original image's coordinates.
/// </summary>
public sealed record DetectionPass(bool Flipped, long ContentHeight, long ContentWidth, List<Tensor> RoiFeatures, Instances Detections);

/// <summary>One pass of test-time augmentation over a batch: the batch's RoI features and each image's <see cref="DetectionPass"/> values.</summary>
public sealed record DetectionBatchPass(bool Flipped, IReadOnlyList<(long Height, long Width)> ContentSizes, List<Tensor> RoiFeatures,
    IReadOnlyList<Instances> Detections);

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
    /// test pipeline; flips mirror the views themselves (<see cref="Passes"/>). <paramref name="testPipeline"/> is the config's
    /// as <see cref="DataPipelines.TestSteps"/> checked it (against these scales), so it is not checked again per call.
    /// </summary>
    public static IReadOnlyList<TransformPipeline> TestPipelines(int testSize, DetectionTestConfig test, IReadOnlyList<TransformStepConfig>? testPipeline = null)
    {
        CheckSettings(test, testSize);
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
        DetectionTestConfig test) =>
        Passes(model, views.Select(OfOne).ToList(), [(originalHeight, originalWidth)], test)
            .Select(pass => new DetectionPass(pass.Flipped, pass.ContentSizes[0].Height, pass.ContentSizes[0].Width, pass.RoiFeatures, pass.Detections[0]))
            .ToList();

    /// <summary>
    /// <see cref="Passes(CascadeMaskRcnn, IReadOnlyList{DetectionView}, long, long, DetectionTestConfig)"/> of a batch: each
    /// pass runs the whole batch through the detector once. With more than one image, every image's content in a view
    /// must pad to one <see cref="CascadeMaskRcnn.InputSize"/> (<see cref="DetectionInference.InputShape"/>), so that each
    /// image sees what it would alone.
    /// </summary>
    public static List<DetectionBatchPass> Passes(CascadeMaskRcnn model, IReadOnlyList<DetectionViewBatch> views,
        IReadOnlyList<(long Height, long Width)> originalSizes, DetectionTestConfig test)
    {
        if (views.Count != test.Scales.Count)
            throw new ArgumentException($"{views.Count} test views for {test.Scales.Count} model.det_test.scales", nameof(views));
        var passes = new List<DetectionBatchPass>();
        foreach (var view in views)
        {
            if (view.ContentSizes.Count != originalSizes.Count)
                throw new ArgumentException($"a test view of {view.ContentSizes.Count} images for {originalSizes.Count} original sizes", nameof(views));
            foreach (bool flipped in test.Flip ? new[] { false, true } : new[] { false })
            {
                var (features, found) = model.DetectBoxes(PassInput(model, view, flipped), view.ContentSizes);
                var detections = found.Select((d, i) =>
                {
                    var (content, original) = (view.ContentSizes[i], originalSizes[i]);
                    var boxes = ToOriginal(d.Boxes, flipped, content.Height, content.Width, original.Height, original.Width);
                    return new Instances(original.Height, original.Width, boxes, d.Classes, d.Scores);
                }).ToList();
                passes.Add(new DetectionBatchPass(flipped, view.ContentSizes, features, detections));
            }
        }
        return passes;
    }

    private static DetectionViewBatch OfOne(DetectionView view) => new(view.Image, [(view.ContentHeight, view.ContentWidth)]);

    /// <summary>
    /// What a pass feeds the detector: each image's content, mirrored in a flipped pass. Only the content is mirrored: the
    /// padding must stay right and bottom, where the detector pads. One image goes as its content alone (the detector pads
    /// it); several are zero-padded to their shared input size, the padding the detector would give each alone.
    /// </summary>
    private static Tensor PassInput(CascadeMaskRcnn model, DetectionViewBatch view, bool flipped)
    {
        var sizes = view.ContentSizes;
        if (sizes.Count == 1)
        {
            var content = view.Images[.., .., ..(int)sizes[0].Height, ..(int)sizes[0].Width];
            return flipped ? content.flip(3) : content;
        }
        var (height, width) = model.InputSize(sizes[0].Height, sizes[0].Width);
        foreach (var other in sizes)
            if (model.InputSize(other.Height, other.Width) != (height, width))
                throw new ArgumentException($"images of one batch must pad to one detector input size: {sizes[0].Width}x{sizes[0].Height} pads to " +
                    $"{width}x{height}, {other.Width}x{other.Height} does not", nameof(view));
        var images = sizes.Select((size, i) =>
        {
            var content = view.Images[i..(i + 1), .., ..(int)size.Height, ..(int)size.Width];
            if (flipped) content = content.flip(3);
            return nn.functional.pad(content, [0, width - size.Width, 0, height - size.Height]);
        }).ToArray();
        return cat(images, 0);
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
        if (IsPlain(test) && views.Count != 1) throw new ArgumentException($"{views.Count} test views for the one model.det_test.scales ratio", nameof(views));
        return Predict(model, views.Select(OfOne).ToList(), [(originalHeight, originalWidth)], test)[0];
    }

    /// <summary>
    /// <see cref="Predict(CascadeMaskRcnn, IReadOnlyList{DetectionView}, long, long, DetectionTestConfig)"/> of a batch, each
    /// view of every image run through the detector in one forward per pass; per image, its detections at its original
    /// size. With more than one image, every view's tensor must be each image's view zero-padded to the detector's input
    /// size (<see cref="DetectionInference.InputShape"/>), and every image's content must pad to it.
    /// </summary>
    public static IReadOnlyList<Instances> Predict(CascadeMaskRcnn model, IReadOnlyList<DetectionViewBatch> views,
        IReadOnlyList<(long Height, long Width)> originalSizes, DetectionTestConfig test)
    {
        if (IsPlain(test))
        {
            if (views.Count != 1) throw new ArgumentException($"{views.Count} test views for the one model.det_test.scales ratio", nameof(views));
            return model.Predict(views[0].Images, views[0].ContentSizes, originalSizes);
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var passes = Passes(model, views, originalSizes, test);
        var results = new List<Instances>();
        var merged = new List<Instances>();
        for (int i = 0; i < originalSizes.Count; i++)
        {
            var (height, width) = originalSizes[i];
            // Soft-NMS keeps boxes hard NMS would drop, at decayed scores: those are the scores reported, and the masks below are
            // predicted at exactly the merged boxes, whatever their number.
            merged.Add(Merge(passes.Select(p => p.Detections[i]).ToList(), height, width, model.RoiHeads.Settings.NumClasses,
                test.NmsIou, test.MaxPerImg, MergeSoftNms(test)).Merged);
        }
        var masks = model.MaskOn ? AverageMasks(model, passes, merged, originalSizes) : null;
        using var paste = StageProfiler.Measure(DetectionStages.Paste);
        for (int i = 0; i < merged.Count; i++)
        {
            var (height, width) = originalSizes[i];
            var found = DetectionPostprocessor.ToOutputSize(new Instances(height, width, merged[i].Boxes, merged[i].Classes, merged[i].Scores, masks?[i]),
                height, width);
            found.Boxes.Tensor.MoveToOuterDisposeScope();
            found.Classes?.MoveToOuterDisposeScope();
            found.Scores?.MoveToOuterDisposeScope();
            found.Masks?.MoveToOuterDisposeScope();
            results.Add(found);
        }
        return results;
    }

    /// <summary>
    /// Each image's mask probabilities at its merged boxes, averaged over the passes: the mask head runs once per pass on
    /// the whole batch, at the merged boxes mapped into that pass's view.
    /// </summary>
    private static List<Tensor> AverageMasks(CascadeMaskRcnn model, IReadOnlyList<DetectionBatchPass> passes, IReadOnlyList<Instances> merged,
        IReadOnlyList<(long Height, long Width)> originalSizes)
    {
        var sums = new Tensor?[merged.Count];
        foreach (var pass in passes)
        {
            var inView = merged.Select((m, i) =>
            {
                var (content, original) = (pass.ContentSizes[i], originalSizes[i]);
                var boxes = FromOriginal(m.Boxes, pass.Flipped, content.Height, content.Width, original.Height, original.Width);
                return new Instances(content.Height, content.Width, boxes, m.Classes);
            }).ToList();
            var probabilities = model.MaskProbabilities(pass.RoiFeatures, inView);
            long offset = 0;
            for (int i = 0; i < merged.Count; i++)
            {
                var own = probabilities.narrow(0, offset, merged[i].Count);
                offset += merged[i].Count;
                // A mask of a mirrored view is the mirror of the original's (its grid spans the mirrored box).
                if (pass.Flipped) own = own.flip(2);
                sums[i] = sums[i] is null ? own.clone() : sums[i]!.add_(own);
            }
        }
        return sums.Select(sum => sum!.div_(passes.Count)).ToList();
    }

    private static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);
}
