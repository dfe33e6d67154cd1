using System.Globalization;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Ops;

/// <summary>How Soft-NMS decays and drops the boxes that overlap a picked one; the IoU threshold is the NMS threshold.</summary>
/// <param name="Method">Linear (s · (1 − IoU) from the threshold on) or gaussian (s · exp(−IoU² / σ) at every IoU).</param>
/// <param name="Sigma">σ of the gaussian decay; positive.</param>
/// <param name="MinScore">A box whose score falls below this after a decay is dropped.</param>
public sealed record SoftNmsSettings(SoftNmsMethod Method, double Sigma, double MinScore)
{
    /// <summary>
    /// What a config's NMS keys ask for: null for hard NMS, else Soft-NMS's settings. The detector's final NMS
    /// (model.det_head.test_nms_type, test_soft_nms_method, …) and test-time augmentation's merge (model.det_test.nms_type,
    /// soft_nms_method, …) name the same four settings after their own prefix. σ and the minimum score are checked whatever
    /// the type says, so a config switched to soft_nms later holds no surprise; a bad value is refused naming its key.
    /// </summary>
    /// <param name="keyPrefix">What precedes <c>soft_nms_sigma</c> and <c>soft_nms_min_score</c> in the keys, e.g. "model.det_test.".</param>
    public static SoftNmsSettings? FromConfig(DetectionNmsType type, SoftNmsMethod method, double sigma, double minScore, string keyPrefix)
    {
        static string Invariant(double value) => value.ToString(CultureInfo.InvariantCulture);
        if (!(sigma > 0) || double.IsPositiveInfinity(sigma))
            throw new VimException($"{keyPrefix}soft_nms_sigma must be a positive number (σ of Soft-NMS's gaussian decay exp(-IoU²/σ), e.g. 0.5), got {Invariant(sigma)}");
        if (!(minScore >= 0 && minScore < 1))
            throw new VimException($"{keyPrefix}soft_nms_min_score must be within [0, 1) (the decayed score below which Soft-NMS drops a box, e.g. 0.001), got {Invariant(minScore)}");
        return type == DetectionNmsType.SoftNms ? new SoftNmsSettings(method, sigma, minScore) : null;
    }
}

/// <summary>
/// Soft-NMS (Bodla et al. 2017) with the rule of mmcv's soft_nms CPU kernel: repeatedly pick the remaining box of highest
/// current score (the first such in the kernel's working order on ties), then decay every other remaining box's score by
/// its IoU with the pick, dropping it once the score is below the minimum. Everything is float32, as the kernel computes,
/// and IoU has no +1 in widths (mmcv's default offset 0, detectron2's convention), so the picks and decayed scores are the
/// kernel's to the bit. One departure: boxes that do not intersect have IoU exactly 0 (<see cref="BoxGeometry.PairwiseIou"/>),
/// where the kernel divides 0 by 0 for two empty boxes.
/// </summary>
public static class SoftNms
{
    /// <param name="boxes">(N, 4) xyxy boxes of any floating dtype, compared in float32.</param>
    /// <param name="scores">(N) scores, decayed in float32.</param>
    /// <param name="iouThreshold">The IoU from which the linear decay applies (mmcv's iou_threshold; the gaussian ignores it).</param>
    /// <returns>int64 indices of the kept boxes in pick order (non-increasing score) and their decayed float32 scores, on the boxes' device.</returns>
    public static (Tensor Keep, Tensor Scores) Apply(Tensor boxes, Tensor scores, double iouThreshold, SoftNmsSettings settings)
    {
        Validate(boxes, scores, iouThreshold, settings);
        if (boxes.shape[0] == 0)
            return (empty(0, ScalarType.Int64, boxes.device), empty(0, ScalarType.Float32, boxes.device));
        using var scope = NewDisposeScope();
        var (keep, decayed) = Run(boxes, scores, iouThreshold, settings);
        return (tensor(keep, device: boxes.device).MoveToOuterDisposeScope(), tensor(decayed, device: boxes.device).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Soft-NMS within each category only: boxes of different <paramref name="categories"/> never decay each other's
    /// scores. mmcv's batched_nms gets the same by shifting each category's boxes apart and running one soft_nms (or, past
    /// 10,000 boxes, one per category); running each category alone keeps the IoUs free of the rounding of those shifts.
    /// </summary>
    /// <returns>int64 indices of the kept boxes and their decayed float32 scores, by decreasing decayed score (equal scores by index).</returns>
    public static (Tensor Keep, Tensor Scores) Batched(Tensor boxes, Tensor scores, Tensor categories, double iouThreshold, SoftNmsSettings settings)
    {
        Validate(boxes, scores, iouThreshold, settings);
        Nms.ValidateCategories(boxes, categories, "SoftNms.Batched");
        if (boxes.shape[0] == 0)
            return (empty(0, ScalarType.Int64, boxes.device), empty(0, ScalarType.Float32, boxes.device));
        using var scope = NewDisposeScope();
        var categoryOf = categories.cpu().to_type(ScalarType.Int64).data<long>().ToArray();
        // The kernel reads its IoUs and scores on the host: one transfer here, not a gather and a copy per category.
        var hostBoxes = boxes.to_type(ScalarType.Float32).cpu();
        var hostScores = scores.to_type(ScalarType.Float32).cpu();
        var kept = new List<(long Index, float Score)>();
        foreach (var group in Enumerable.Range(0, categoryOf.Length).GroupBy(i => categoryOf[i]))
        {
            using var groupScope = NewDisposeScope();
            var members = group.Select(i => (long)i).ToArray();
            var index = tensor(members, device: hostBoxes.device);
            var (keep, decayed) = Run(hostBoxes[index], hostScores[index], iouThreshold, settings);
            for (int k = 0; k < keep.Length; k++)
                kept.Add((members[keep[k]], decayed[k]));
        }
        kept.Sort((a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : a.Index.CompareTo(b.Index));
        return (tensor(kept.Select(k => k.Index).ToArray(), device: boxes.device).MoveToOuterDisposeScope(),
            tensor(kept.Select(k => k.Score).ToArray(), device: boxes.device).MoveToOuterDisposeScope());
    }

    /// <summary>The kernel over one group: indices into the group's boxes in pick order, and their decayed scores.</summary>
    private static (long[] Keep, float[] Scores) Run(Tensor boxes, Tensor scores, double iouThreshold, SoftNmsSettings settings)
    {
        int n = checked((int)boxes.shape[0]);
        // The IoUs never change (only scores do), so every pair's is computed once, as detectron2's pairwise_iou does it.
        var asFloat = new Boxes(boxes.to_type(ScalarType.Float32));
        var iou = BoxGeometry.PairwiseIou(asFloat, asFloat).cpu().data<float>().ToArray();
        var score = scores.to_type(ScalarType.Float32).cpu().data<float>().ToArray();
        var original = new long[n];
        for (int i = 0; i < n; i++) original[i] = i;
        float threshold = (float)iouThreshold, sigma = (float)settings.Sigma, minScore = (float)settings.MinScore;
        bool linear = settings.Method == SoftNmsMethod.Linear;
        // Slots [0, i) hold the picks in order; [i, count) the boxes still in play. Picking swaps the best into slot i and
        // dropping moves the last box into the dropped one's slot, as the kernel does: its tie-breaking follows these slots.
        int count = n;
        for (int i = 0; i < count; i++)
        {
            int best = i;
            for (int j = i + 1; j < count; j++)
                if (score[best] < score[j]) best = j;
            (score[i], score[best]) = (score[best], score[i]);
            (original[i], original[best]) = (original[best], original[i]);
            long row = original[i] * n;
            for (int j = i + 1; j < count; j++)
            {
                float overlap = iou[row + original[j]];
                float weight = linear ? (overlap >= threshold ? 1f - overlap : 1f) : MathF.Exp(-(overlap * overlap) / sigma);
                score[j] *= weight;
                if (score[j] < minScore)
                {
                    count--;
                    score[j] = score[count];
                    original[j] = original[count];
                    j--;
                }
            }
        }
        return (original[..count], score[..count]);
    }

    private static void Validate(Tensor boxes, Tensor scores, double iouThreshold, SoftNmsSettings settings)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(settings);
        if (boxes.dim() != 2 || boxes.shape[1] != 4 || !boxes.is_floating_point())
            throw new ArgumentException($"SoftNms: boxes must be a floating (N, 4) tensor, got {boxes.dtype} ({string.Join(", ", boxes.shape)}).", nameof(boxes));
        if (scores.dim() != 1 || scores.shape[0] != boxes.shape[0] || !scores.is_floating_point())
            throw new ArgumentException($"SoftNms: scores must be floating (N) with N = {boxes.shape[0]}, got {scores.dtype} ({string.Join(", ", scores.shape)}).", nameof(scores));
        if (!RoiAlign.SameDevice(scores, boxes))
            throw new ArgumentException($"SoftNms: scores are on {scores.device} but boxes on {boxes.device}.", nameof(scores));
        if (double.IsNaN(iouThreshold))
            throw new ArgumentException("SoftNms: the IoU threshold is NaN.", nameof(iouThreshold));
        if (!(settings.Sigma > 0) || double.IsInfinity(settings.Sigma))
            throw new ArgumentException($"SoftNms: sigma must be a positive number, got {settings.Sigma}.", nameof(settings));
        if (double.IsNaN(settings.MinScore))
            throw new ArgumentException("SoftNms: the minimum score is NaN.", nameof(settings));
    }
}
