using System.Globalization;
using TorchSharp;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Data.Masks;
using Vim.Detection.Ops;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>The thresholds of a detection confusion matrix, with mmdet confusion_matrix.py's defaults.</summary>
public sealed record DetectionConfusionSettings
{
    /// <summary>Detections scoring below this are left out (--score-thr).</summary>
    public double ScoreThreshold { get; init; } = 0.3;

    /// <summary>A detection and a ground truth whose box IoU reaches this are a pair (--tp-iou-thr).</summary>
    public double TpIouThreshold { get; init; } = 0.5;

    /// <summary>Class-wise NMS over the detections first, at this IoU (--nms-iou-thr); null: none.</summary>
    public double? NmsIouThreshold { get; init; }

    /// <summary>Refuses thresholds the rule cannot use, naming the command-line option.</summary>
    public void Validate()
    {
        if (!(ScoreThreshold is >= 0 and <= 1))
            throw new VimException($"--score-thr: expected a score in [0, 1], got {Number(ScoreThreshold)}.");
        // IoU ≥ 0 holds for every pair, so 0 would pair every detection with every ground truth.
        if (!(TpIouThreshold is > 0 and <= 1))
            throw new VimException($"--tp-iou-thr: expected an IoU in (0, 1], got {Number(TpIouThreshold)}.");
        // mmdet tests `if nms_iou_thr:`, so its 0 means no NMS; leaving the option out says that without the ambiguity.
        if (NmsIouThreshold is { } nms && !(nms is > 0 and <= 1))
            throw new VimException($"--nms-iou-thr: expected an IoU in (0, 1] (leave the option out for no NMS), got {Number(nms)}.");
    }

    /// <summary>The rule in one sentence, for the reports.</summary>
    public string Describe() =>
        $"Boxes: detections scoring at least {Number(ScoreThreshold)}" +
        (NmsIouThreshold is { } nms ? $", after class-wise NMS at IoU {Number(nms)}," : "") +
        $" paired with every ground truth they overlap at box IoU ≥ {Number(TpIouThreshold)} (mmdet's rule: each pair counts once " +
        "in [ground-truth class, detected class]); a detection pairing with none counts in the background row, a ground truth " +
        "that no detection of its own class paired with in the background column.";

    private static string Number(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
}

/// <summary>
/// The (C+1)×(C+1) box confusion matrix of mmdet's tools/analysis_tools/confusion_matrix.py (analyze_per_img_dets), over
/// a COCO ground truth and COCO results: rows are ground-truth classes, columns detected classes, and the last row and
/// column are "background".
/// </summary>
/// <remarks>
/// Per image and per detected class: detections scoring ≥ the score threshold (with NMS: mmcv's nms first keeps
/// scores strictly above a positive threshold, then suppresses within the class at IoU above the NMS threshold) are
/// each compared with every ground truth of the image, whatever its class. Every pair with IoU ≥ the TP threshold adds
/// one to [ground-truth class, detected class], so a duplicate detection of an object counts twice on the diagonal and
/// a detection overlapping two objects counts for both; a detection in no pair adds one to [background, detected
/// class]. Then each ground truth that no detection of its own class paired with adds one to [its class, background]
/// (a wrong-class pair does not save it from counting as missed). The ground truth is what mmdet 3's CocoDataset
/// reads: annotations of the file's categories whose box overlaps the image (when the image has a size) with width and
/// height ≥ 1 and an area above 0 where the file gives one. Crowd annotations (iscrowd 1) are ground truth like any
/// other, as in mmdet 3, whose tool reads every instance without its ignore flag (mmdet 2 left them out, so a
/// detection on a crowd was background there). Box IoU is <see cref="MaskIou.BoxIou"/>'s, mmdet's bbox_overlaps.
/// </remarks>
public static class DetectionConfusion
{
    public const string BackgroundLabel = "background";

    /// <param name="groundTruthSource">Names the ground truth in errors (its file).</param>
    /// <param name="resultsSource">Names the detections in errors (the results file).</param>
    public static ConfusionMatrix Compute(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, DetectionConfusionSettings settings,
        string groundTruthSource, string resultsSource)
    {
        settings.Validate();
        var categories = CategoryMap.FromDataset(groundTruth);
        if (categories.Count == 0) throw new VimException($"{groundTruthSource}: no \"categories\"; the confusion matrix has a row per category.");
        var matrix = new ConfusionMatrix([.. categories.Names, BackgroundLabel]);
        int background = categories.Count;

        var truthsByImage = new Dictionary<long, List<(double[] Box, int Label)>>();
        foreach (var a in groundTruth.Annotations)
        {
            if (!categories.TryGetClassIndex(a.CategoryId, out int label) || !groundTruth.ImagesById.TryGetValue(a.ImageId, out var image)) continue;
            var box = a.Bbox ?? throw new VimException($"{groundTruthSource}: annotation id {a.Id} has no \"bbox\"; the confusion matrix pairs boxes.");
            if (!IsGroundTruth(box, a.Area, image)) continue;
            if (!truthsByImage.TryGetValue(a.ImageId, out var list)) truthsByImage[a.ImageId] = list = [];
            list.Add((box, label));
        }

        CocoResults.RequireOf(groundTruth, detections, groundTruthSource, resultsSource);
        var detectionsByImage = new Dictionary<long, List<(CocoDetection Detection, int Label)>>();
        for (int d = 0; d < detections.Count; d++)
        {
            var det = detections[d];
            int label = categories.ToClassIndex(det.CategoryId);
            if (det.Bbox is null)
                throw new VimException($"{resultsSource}: [{d}]: no \"bbox\"; the confusion matrix pairs boxes (a segm-only results file cannot be used).");
            if (!detectionsByImage.TryGetValue(det.ImageId, out var list)) detectionsByImage[det.ImageId] = list = [];
            list.Add((det, label));
        }

        foreach (var image in groundTruth.Images)
        {
            var truths = truthsByImage.GetValueOrDefault(image.Id) ?? [];
            var found = detectionsByImage.GetValueOrDefault(image.Id) ?? [];
            var pairedWithOwnClass = new bool[truths.Count];
            foreach (var group in found.GroupBy(f => f.Label))
            {
                foreach (var det in Kept(group.Select(f => f.Detection).ToList(), settings))
                {
                    bool paired = false;
                    for (int g = 0; g < truths.Count; g++)
                    {
                        if (MaskIou.BoxIou(det.Bbox, truths[g].Box, gtIsCrowd: false) < settings.TpIouThreshold) continue;
                        paired = true;
                        if (truths[g].Label == group.Key) pairedWithOwnClass[g] = true;
                        matrix.Add(truths[g].Label, group.Key);
                    }
                    if (!paired) matrix.Add(background, group.Key);
                }
            }
            for (int g = 0; g < truths.Count; g++)
                if (!pairedWithOwnClass[g]) matrix.Add(truths[g].Label, background);
        }
        return matrix;
    }

    /// <summary>mmdet 3's CocoDataset.parse_data_info filter: a box that overlaps the image, at least 1×1, with a positive area.</summary>
    private static bool IsGroundTruth(double[] box, double? area, CocoImage image)
    {
        double x = box[0], y = box[1], w = box[2], h = box[3];
        if (image.Width > 0 && image.Height > 0)
        {
            double overlapW = Math.Max(0, Math.Min(x + w, image.Width) - Math.Max(x, 0));
            double overlapH = Math.Max(0, Math.Min(y + h, image.Height) - Math.Max(y, 0));
            if (overlapW * overlapH == 0) return false;
        }
        return !(area <= 0) && w >= 1 && h >= 1;
    }

    /// <summary>One class's detections of one image that take part: above the score threshold, and NMS survivors when asked.</summary>
    private static IEnumerable<CocoDetection> Kept(List<CocoDetection> detections, DetectionConfusionSettings settings)
    {
        if (settings.NmsIouThreshold is not { } nmsIou) return detections.Where(d => d.Score >= settings.ScoreThreshold);
        // mmcv's nms(score_threshold=t) keeps scores strictly above t before suppressing, and only for t > 0.
        var candidates = settings.ScoreThreshold > 0 ? detections.Where(d => d.Score > settings.ScoreThreshold).ToList() : detections;
        if (candidates.Count == 0) return [];
        using var scope = NewDisposeScope();
        var corners = new double[4 * candidates.Count];
        for (int i = 0; i < candidates.Count; i++)
        {
            var b = candidates[i].Bbox!;
            corners[4 * i] = b[0];
            corners[4 * i + 1] = b[1];
            corners[4 * i + 2] = b[0] + b[2];
            corners[4 * i + 3] = b[1] + b[3];
        }
        // Detections read from a results file are host data: NMS runs on the CPU whatever device a model used.
        var keep = Nms.Apply(tensor(corners, device: CPU).view(-1, 4), tensor(candidates.Select(d => d.Score).ToArray(), device: CPU), nmsIou);
        return keep.cpu().data<long>().ToArray().Select(i => candidates[(int)i]).Where(d => d.Score >= settings.ScoreThreshold).ToList();
    }
}
