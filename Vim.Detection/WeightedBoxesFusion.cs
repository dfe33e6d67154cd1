using System.Globalization;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Masks;

namespace Vim.Detection;

/// <summary>How a fused box's score is formed from its cluster's, mmdet's wbf.py <c>conf_type</c>.</summary>
public enum FusionConfidence
{
    /// <summary><c>avg</c>: the mean of the cluster's weighted scores × min(models, cluster size) / Σ weights.</summary>
    Avg,

    /// <summary><c>max</c>: the largest weighted score / the largest weight.</summary>
    Max,

    /// <summary><c>box_and_model_avg</c>: Σ weighted scores / Σ the cluster's box weights × Σ the weights of the models present / Σ weights.</summary>
    BoxAndModelAvg,

    /// <summary><c>absent_model_aware_avg</c>: Σ weighted scores / (Σ the cluster's box weights + Σ the weights of the models absent).</summary>
    AbsentModelAwareAvg,
}

/// <summary>The settings of a fusion, with mmdet's defaults (tools/analysis_tools/fuse_results.py, mmdet/models/utils/wbf.py).</summary>
public sealed record WeightedBoxesFusionSettings
{
    /// <summary>One weight per model, in the order of the results; null: 1 each (--weights).</summary>
    public IReadOnlyList<double>? Weights { get; init; }

    /// <summary>A box joins a cluster whose fused box it overlaps with an IoU strictly above this (--iou-thr).</summary>
    public double IouThreshold { get; init; } = 0.55;

    /// <summary>Boxes scoring below this (before weighting) are left out; a box scoring exactly this is kept (--skip-box-thr).</summary>
    public double SkipBoxThreshold { get; init; }

    /// <summary>How a fused score is formed (--conf-type).</summary>
    public FusionConfidence Confidence { get; init; } = FusionConfidence.Avg;

    /// <summary>With <see cref="FusionConfidence.Avg"/>: rescale by the cluster size rather than min(models, size), so a
    /// cluster holding more boxes than there are models may score above 1 (--allows-overflow).</summary>
    public bool AllowsOverflow { get; init; }

    /// <summary>The names --conf-type takes, in mmdet's spelling.</summary>
    public static readonly IReadOnlyList<string> ConfidenceNames = ["avg", "max", "box_and_model_avg", "absent_model_aware_avg"];

    public static FusionConfidence ParseConfidence(string? name) => name switch
    {
        "avg" => FusionConfidence.Avg,
        "max" => FusionConfidence.Max,
        "box_and_model_avg" => FusionConfidence.BoxAndModelAvg,
        "absent_model_aware_avg" => FusionConfidence.AbsentModelAwareAvg,
        _ => throw new VimException($"--conf-type: expected one of {string.Join(", ", ConfidenceNames)}, got '{name}'."),
    };

    public static string NameOf(FusionConfidence confidence) => ConfidenceNames[(int)confidence];

    /// <summary>The weight of each of <paramref name="models"/> models, refused by option name where it cannot be used.</summary>
    public double[] WeightsFor(int models)
    {
        if (models < 1) throw new VimException("--results: expected at least one results file to fuse.");
        if (Weights is null) return Enumerable.Repeat(1.0, models).ToArray();
        // mmdet warns and falls back to equal weights; a miscounted list is more likely a mistake than a wish for 1s.
        if (Weights.Count != models)
            throw new VimException($"--weights: {Weights.Count} weight(s) for {models} --results file(s); expected one per results file, in the same order.");
        for (int m = 0; m < models; m++)
            if (!(Weights[m] > 0 && double.IsFinite(Weights[m])))
                throw new VimException($"--weights: weight {m + 1} is {Number(Weights[m])}; expected a positive number (a weight scales a model's scores).");
        return Weights.ToArray();
    }

    /// <summary>Refuses settings the rule cannot use, naming the command-line option.</summary>
    public void Validate(int models)
    {
        WeightsFor(models);
        // IoU ≥ 0 > a negative threshold for every pair: disjoint boxes would fuse.
        if (!(IouThreshold is >= 0 and <= 1))
            throw new VimException($"--iou-thr: expected an IoU in [0, 1], got {Number(IouThreshold)}.");
        if (!(SkipBoxThreshold is >= 0 and <= 1))
            throw new VimException($"--skip-box-thr: expected a score in [0, 1], got {Number(SkipBoxThreshold)}.");
        if (!Enum.IsDefined(Confidence)) throw new VimException($"--conf-type: unknown value {(int)Confidence}.");
    }

    /// <summary>The settings in one sentence, for the reports.</summary>
    public string Describe(int models) =>
        $"Weighted Boxes Fusion of {models} results file(s): weights {string.Join(", ", WeightsFor(models).Select(Number))}, " +
        $"IoU above {Number(IouThreshold)} joins a cluster, boxes scoring below {Number(SkipBoxThreshold)} left out, " +
        $"conf_type {NameOf(Confidence)}{(Confidence == FusionConfidence.Avg && AllowsOverflow ? " with allows_overflow" : "")}.";

    internal static string Number(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
}

/// <summary>
/// Weighted Boxes Fusion (Solovyev et al., 2021) as mmdet's <c>weighted_boxes_fusion</c> (mmdet/models/utils/wbf.py) and
/// its tools/analysis_tools/fuse_results.py apply it to COCO results files: per image and per category, every model's
/// boxes in descending order of score × model weight each join the fused box they overlap most, if that IoU is strictly
/// above the threshold, or start a cluster of their own; a fused box is the weighted-score average of its cluster's boxes,
/// recomputed as each box joins (later boxes are matched against it, not against the cluster's first box), and its score
/// is formed by <see cref="FusionConfidence"/>.
/// </summary>
/// <remarks>
/// Boxes are COCO's [x, y, w, h] throughout: averaging x, y, w and h with the same weights gives the same box as
/// averaging the corners (the corners are linear in them), and IoU is <see cref="MaskIou.BoxIou"/>'s, mmdet's
/// bbox_overlaps. mmdet's fuse_results.py hands the [x, y, w, h] boxes of the results files to weighted_boxes_fusion,
/// which reads them as corners [x1, y1, x2, y2], and writes the fused "corners" back as "bbox"; here boxes are fused
/// as the boxes they are. No normalisation by the image size is needed (mmdet's wbf.py takes pixels and clips
/// nothing): IoU and a weighted mean are unchanged by scaling each axis. Arithmetic is in float64 throughout (mmdet
/// rounds fused boxes to float32). Equal weighted scores keep the input order (model, then file order), where numpy's
/// argsort leaves their order to the sort; the fused boxes of an image are listed by descending score, equal scores in
/// the order of their category's first box and their cluster's creation. A cluster whose weighted scores are all 0
/// (boxes scoring 0 with --skip-box-thr 0) has no score-weighted mean, where mmdet divides by 0: its box is the plain mean.
/// </remarks>
public static class WeightedBoxesFusion
{
    /// <summary>A box of one model for one image, or a fused one: [x, y, w, h] as COCO writes it.</summary>
    public readonly record struct Box(long Label, double Score, double X, double Y, double Width, double Height);

    /// <summary>A box joined to a cluster: its score times its model's weight, the weight and the model.</summary>
    private readonly record struct Member(double WeightedScore, double Weight, int Model, double X, double Y, double Width, double Height);

    private sealed class Cluster(Member first)
    {
        public readonly List<Member> Members = [first];
        public double[] Fused = [first.X, first.Y, first.Width, first.Height];

        /// <summary>The score-weighted mean of the members' boxes (mmdet's get_weighted_box); the plain mean where every weighted score is 0.</summary>
        public void Recompute()
        {
            double total = Members.Sum(m => m.WeightedScore);
            Func<Member, double> weightOf = total > 0 ? m => m.WeightedScore : _ => 1;
            double norm = total > 0 ? total : Members.Count;
            Fused =
            [
                Members.Sum(m => weightOf(m) * m.X) / norm, Members.Sum(m => weightOf(m) * m.Y) / norm,
                Members.Sum(m => weightOf(m) * m.Width) / norm, Members.Sum(m => weightOf(m) * m.Height) / norm,
            ];
        }
    }

    /// <summary>
    /// Fuses one image's boxes: <paramref name="models"/>[m] is model m's boxes (any order). Returns the fused boxes,
    /// highest score first.
    /// </summary>
    public static List<Box> Fuse(IReadOnlyList<IReadOnlyList<Box>> models, WeightedBoxesFusionSettings settings)
    {
        settings.Validate(models.Count);
        return Fuse(models, settings.WeightsFor(models.Count), settings);
    }

    /// <summary><see cref="Fuse(IReadOnlyList{IReadOnlyList{Box}}, WeightedBoxesFusionSettings)"/> with the settings validated and the weights resolved once.</summary>
    private static List<Box> Fuse(IReadOnlyList<IReadOnlyList<Box>> models, double[] weights, WeightedBoxesFusionSettings settings)
    {
        var byLabel = Prefilter(models, weights, settings.SkipBoxThreshold);
        var fused = new List<Box>();
        foreach (var (label, members) in byLabel)
        {
            var clusters = new List<Cluster>();
            foreach (var member in members)
            {
                Cluster? best = null;
                double bestIou = settings.IouThreshold;
                ReadOnlySpan<double> box = [member.X, member.Y, member.Width, member.Height];
                foreach (var cluster in clusters)
                {
                    double iou = MaskIou.BoxIou(box, cluster.Fused, gtIsCrowd: false);
                    // Strictly above, and the first of equal IoUs: numpy's argmax, then `best_iou <= match_iou` rejects.
                    if (iou > bestIou)
                    {
                        bestIou = iou;
                        best = cluster;
                    }
                }
                if (best is null) clusters.Add(new Cluster(member));
                else
                {
                    best.Members.Add(member);
                    best.Recompute();
                }
            }
            foreach (var cluster in clusters)
                fused.Add(new Box(label, Score(cluster.Members, weights, settings), cluster.Fused[0], cluster.Fused[1], cluster.Fused[2], cluster.Fused[3]));
        }
        return fused.OrderByDescending(b => b.Score).ToList();
    }

    /// <summary>
    /// Each label's boxes that take part (mmdet's prefilter_boxes): a score below the threshold, or a zero area, leaves a
    /// box out; a negative width or height is turned around (mmdet swaps reversed corners). Sorted by weighted score,
    /// highest first, stable; labels in the order of their first box.
    /// </summary>
    private static List<(long Label, List<Member> Members)> Prefilter(IReadOnlyList<IReadOnlyList<Box>> models, double[] weights, double skipBoxThreshold)
    {
        var byLabel = new List<(long Label, List<Member> Members)>();
        var indexOf = new Dictionary<long, int>();
        for (int m = 0; m < models.Count; m++)
        {
            foreach (var b in models[m])
            {
                if (b.Score < skipBoxThreshold) continue;
                double x = b.X, y = b.Y, w = b.Width, h = b.Height;
                if (w < 0) (x, w) = (x + w, -w);
                if (h < 0) (y, h) = (y + h, -h);
                if (w * h == 0) continue;
                if (!indexOf.TryGetValue(b.Label, out int slot))
                {
                    indexOf[b.Label] = slot = byLabel.Count;
                    byLabel.Add((b.Label, []));
                }
                byLabel[slot].Members.Add(new Member(b.Score * weights[m], weights[m], m, x, y, w, h));
            }
        }
        for (int i = 0; i < byLabel.Count; i++)
            byLabel[i] = (byLabel[i].Label, byLabel[i].Members.OrderByDescending(member => member.WeightedScore).ToList());
        return byLabel;
    }

    /// <summary>The fused score of a cluster: get_weighted_box's confidence, then weighted_boxes_fusion's rescaling.</summary>
    private static double Score(List<Member> members, double[] weights, WeightedBoxesFusionSettings settings)
    {
        int n = members.Count;
        double sum = members.Sum(m => m.WeightedScore);
        double clusterWeight = members.Sum(m => m.Weight);
        double totalWeight = weights.Sum();
        var present = members.Select(m => m.Model).ToHashSet();
        double presentWeight = present.Sum(m => weights[m]);
        return settings.Confidence switch
        {
            FusionConfidence.Max => members.Max(m => m.WeightedScore) / weights.Max(),
            // (sum / n) · n / clusterWeight · presentWeight / totalWeight, as mmdet rescales the cluster's mean in two steps.
            FusionConfidence.BoxAndModelAvg => sum / n * n / clusterWeight * presentWeight / totalWeight,
            FusionConfidence.AbsentModelAwareAvg => sum / n * n / (clusterWeight + (totalWeight - presentWeight)),
            _ => sum / n * (settings.AllowsOverflow ? n : Math.Min(weights.Length, n)) / totalWeight,
        };
    }

    /// <summary>
    /// Fuses COCO results files as mmdet's fuse_results.py does: per image of <paramref name="groundTruth"/>, in its
    /// file order, every file's boxes (<paramref name="results"/>[m] is model m's file), categories as labels. Returns
    /// box-only detections (a mask cannot be averaged as a box is; see <see cref="MasksIn"/>). Every detection must have a
    /// box and name an image and a category of the ground truth (checked by the caller: <see cref="RequireFusable"/>).
    /// </summary>
    public static List<CocoDetection> FuseResults(CocoDataset groundTruth, IReadOnlyList<IReadOnlyList<CocoDetection>> results,
        WeightedBoxesFusionSettings settings)
    {
        settings.Validate(results.Count);
        var weights = settings.WeightsFor(results.Count);
        var perImage = new Dictionary<long, List<Box>[]>(groundTruth.Images.Count);
        foreach (var image in groundTruth.Images) perImage[image.Id] = Enumerable.Range(0, results.Count).Select(_ => new List<Box>()).ToArray();
        for (int m = 0; m < results.Count; m++)
        {
            foreach (var d in results[m])
            {
                var box = d.Bbox ?? throw new InvalidOperationException($"results file {m}: a detection of image {d.ImageId} has no box (RequireFusable refuses it).");
                perImage[d.ImageId][m].Add(new Box(d.CategoryId, d.Score, box[0], box[1], box[2], box[3]));
            }
        }
        var fused = new List<CocoDetection>();
        foreach (var image in groundTruth.Images)
        {
            foreach (var b in Fuse(perImage[image.Id], weights, settings))
                fused.Add(new CocoDetection(image.Id, b.Label, b.Score, [b.X, b.Y, b.Width, b.Height], null));
        }
        return fused;
    }

    /// <summary>
    /// Refuses a results file fusion cannot use, naming it (<paramref name="resultsSource"/>) and the entry: no detections,
    /// an image or category the ground truth lacks (<see cref="CocoResults.RequireOf"/>), a detection without a box (a
    /// mask alone). The reader has already refused boxes that are not four finite numbers and scores that are not finite.
    /// </summary>
    public static void RequireFusable(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, string groundTruthSource, string resultsSource)
    {
        if (detections.Count == 0) throw new VimException($"{resultsSource}: the results file holds no detections; expected a model's results to fuse.");
        CocoResults.RequireOf(groundTruth, detections, groundTruthSource, resultsSource);
        for (int d = 0; d < detections.Count; d++)
        {
            if (detections[d].Bbox is null)
                throw new VimException($"{resultsSource}: [{d}]: no \"bbox\"; Weighted Boxes Fusion fuses boxes (a mask-only results file cannot be fused).");
        }
    }

    /// <summary>How many of <paramref name="detections"/> carry a mask, which fusion leaves out.</summary>
    public static int MasksIn(IReadOnlyList<CocoDetection> detections) => detections.Count(d => d.Segmentation is not null);
}
