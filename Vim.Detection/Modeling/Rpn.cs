using Vim.Core.Diagnostics;
using TorchSharp;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Region proposal network (Detectron2's RPN): anchors on every pyramid level, a shared head,
/// anchor labelling (matcher + balanced sampler), objectness BCE and box-delta losses, and
/// proposal selection (top-k per level, clip, drop empty, per-level NMS, top-k per image).
/// </summary>
public sealed class Rpn : nn.Module
{
    private readonly RpnHead rpn_head;

    public RpnSettings Settings { get; }
    public AnchorGenerator Anchors { get; }
    public Matcher AnchorMatcher { get; }
    public BalancedPositiveNegativeSampler Sampler { get; }
    public Box2BoxTransform BoxCoder { get; }

    public Rpn(long inChannels, AnchorGenerator anchors, RpnSettings? settings = null, IReadOnlyList<long>? convDims = null,
        long seed = 0) : base(nameof(Rpn))
    {
        Settings = settings ?? new RpnSettings();
        Anchors = anchors;
        AnchorMatcher = new Matcher(Settings.IouThresholds, Settings.IouLabels, Settings.AllowLowQualityMatches);
        Sampler = new BalancedPositiveNegativeSampler(Settings.BatchSizePerImage, Settings.PositiveFraction);
        var w = Settings.BoxWeights;
        BoxCoder = new Box2BoxTransform(w.X, w.Y, w.W, w.H);
        rpn_head = new RpnHead(inChannels, anchors.AnchorsPerLocation, convDims, seed);
        register_module(nameof(rpn_head), rpn_head);
    }

    public RpnHead Head => rpn_head;

    /// <param name="features">p2…p6 maps (N, C, H_l, W_l), finest first, one per anchor level.</param>
    /// <param name="imageSizes">(height, width) of each image's valid (unpadded) region.</param>
    /// <param name="gtBoxes">Per-image ground-truth boxes (crowd boxes removed); required in training.</param>
    /// <param name="generator">Random source of the anchor sampling (seeded for reproducible runs).</param>
    public RpnOutput Forward(IReadOnlyList<Tensor> features, IReadOnlyList<(long Height, long Width)> imageSizes,
        IReadOnlyList<Boxes>? gtBoxes = null, Generator? generator = null)
    {
        if (features.Count != Anchors.Strides.Count)
            throw new ArgumentException($"Rpn: {features.Count} feature maps given, the anchor generator has {Anchors.Strides.Count} levels.", nameof(features));
        long n = features[0].shape[0];
        if (imageSizes.Count != n)
            throw new ArgumentException($"Rpn: {imageSizes.Count} image sizes given for a batch of {n}.", nameof(imageSizes));
        if (training && gtBoxes is null)
            throw new ArgumentException("Rpn: ground-truth boxes are required in training mode.", nameof(gtBoxes));
        if (gtBoxes is not null && gtBoxes.Count != n)
            throw new ArgumentException($"Rpn: {gtBoxes.Count} ground-truth lists given for a batch of {n}.", nameof(gtBoxes));

        using var scope = NewDisposeScope();
        // Not a forward: the RPN's FLOP scope is opened here (its head's convolutions are counted by their hooks).
        using var counted = FlopCounter.Within(this);
        var device = features[0].device;
        var anchors = Anchors.Generate(features.Select(f => (f.shape[2], f.shape[3])).ToList(), device);
        List<Tensor> rawLogits, rawDeltas;
        using (StageProfiler.Measure(DetectionStages.RpnHead))
        using (var marks = BackwardProfiler.Open(DetectionStages.RpnHead))
        {
            (rawLogits, rawDeltas) = rpn_head.call(features.Select(marks.Input).ToList());
            (rawLogits, rawDeltas) = (rawLogits.Select(marks.Output).ToList(), rawDeltas.Select(marks.Output).ToList());
        }
        var logits = rawLogits.Select(FlattenLogits).ToList();
        var deltas = rawDeltas.Select(FlattenDeltas).ToList();

        Tensor? lossCls = null, lossLoc = null;
        Dictionary<string, Tensor>? statistics = null;
        if (gtBoxes is not null)
        {
            using var targetsStage = StageProfiler.Measure(DetectionStages.RpnTargets);
            var allAnchors = new Boxes(cat(anchors, 0));
            var (labels, matched) = LabelAndSampleAnchors(allAnchors, gtBoxes, generator);
            statistics = DetectionStatistics.Anchors(labels);
            foreach (var statistic in statistics.Values) statistic.MoveToOuterDisposeScope();
            (lossCls, lossLoc) = Losses(allAnchors, cat(logits.ToArray(), 1), cat(deltas.ToArray(), 1), labels, matched);
            lossCls = (lossCls * Settings.ObjectnessLossWeight).MoveToOuterDisposeScope();
            lossLoc = (lossLoc * Settings.BoxLossWeight).MoveToOuterDisposeScope();
        }

        IReadOnlyList<Instances> proposals;
        // Proposals are fixed inputs of the box heads: no gradient through their coordinates.
        using (StageProfiler.Measure(DetectionStages.RpnProposals))
        using (no_grad())
        {
            var decoded = new List<Tensor>();
            for (int level = 0; level < anchors.Length; level++)
            {
                var d = deltas[level].detach();
                var a = anchors[level].repeat(n, 1);
                decoded.Add(BoxCoder.ApplyDeltas(d.reshape(-1, 4), new Boxes(a)).view(n, -1, 4));
            }
            proposals = FindTopProposals(decoded, logits.Select(l => l.detach()).ToList(), imageSizes,
                Settings.NmsThreshold, training ? Settings.PreNmsTopKTrain : Settings.PreNmsTopKTest,
                training ? Settings.PostNmsTopKTrain : Settings.PostNmsTopKTest, Settings.MinBoxSize, training);
        }
        foreach (var p in proposals)
        {
            p.Boxes.Tensor.MoveToOuterDisposeScope();
            p.Scores!.MoveToOuterDisposeScope();
        }
        return new RpnOutput(proposals, lossCls, lossLoc, statistics);
    }

    /// <summary>(N, A, H, W) → (N, H·W·A), the anchor order (location major, cell anchor minor).</summary>
    public static Tensor FlattenLogits(Tensor logits) => logits.permute(0, 2, 3, 1).flatten(1);

    /// <summary>(N, 4A, H, W) → (N, H·W·A, 4), channel a·4 + k holding delta k of cell anchor a.</summary>
    public static Tensor FlattenDeltas(Tensor deltas)
    {
        long n = deltas.shape[0], h = deltas.shape[2], w = deltas.shape[3];
        long a = deltas.shape[1] / 4;
        return deltas.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, 4);
    }

    /// <summary>
    /// Per image: anchor labels (R) int64 — 1 sampled positive, 0 sampled negative, −1 ignored or not
    /// sampled — and the matched ground-truth box of every anchor (R, 4) (zeros without ground truth).
    /// </summary>
    public (List<Tensor> Labels, List<Tensor> MatchedBoxes) LabelAndSampleAnchors(Boxes anchors, IReadOnlyList<Boxes> gtBoxes,
        Generator? generator)
    {
        var labels = new List<Tensor>();
        var matched = new List<Tensor>();
        foreach (var gt in gtBoxes)
        {
            using var scope = NewDisposeScope();
            var gtOnDevice = new Boxes(gt.Tensor.to(anchors.Tensor.device).to_type(anchors.Tensor.dtype));
            var match = AnchorMatcher.Match(BoxGeometry.PairwiseIou(gtOnDevice, anchors));
            var raw = match.Labels.to_type(ScalarType.Int64);
            var (positive, negative) = Sampler.Sample(raw, backgroundLabel: 0, generator);
            var sampled = full_like(raw, -1);
            sampled.index_fill_(0, positive, 1);
            sampled.index_fill_(0, negative, 0);
            var boxes = gt.Count == 0 ? zeros_like(anchors.Tensor) : gtOnDevice.Tensor[match.Matches];
            labels.Add(sampled.MoveToOuterDisposeScope());
            matched.Add(boxes.MoveToOuterDisposeScope());
        }
        return (labels, matched);
    }

    /// <summary>
    /// Objectness BCE over the sampled anchors and, on the positive anchors, smooth-L1 (β from the settings) of the deltas
    /// or the IoU loss of the boxes they decode to (<see cref="RpnSettings.BoxRegressionLoss"/>), both summed and divided by
    /// (batch size per image × images), as detectron2's _dense_box_regression_loss for every loss type.
    /// </summary>
    /// <param name="logits">(N, R) objectness logits.</param>
    /// <param name="deltas">(N, R, 4) predicted deltas.</param>
    public (Tensor Objectness, Tensor Box) Losses(Boxes anchors, Tensor logits, Tensor deltas, IReadOnlyList<Tensor> labels,
        IReadOnlyList<Tensor> matchedBoxes)
    {
        using var scope = NewDisposeScope();
        var gtLabels = stack(labels.ToArray());
        var positive = gtLabels.eq(1);
        var valid = gtLabels.ge(0);
        var positiveAnchors = new Boxes(anchors.Tensor.unsqueeze(0).expand(labels.Count, -1, -1)[positive]);
        var box = BoxRegressionLoss.Sum(Settings.BoxRegressionLoss, Settings.SmoothL1Beta, BoxCoder, deltas[positive], positiveAnchors,
            stack(matchedBoxes.ToArray())[positive]);
        var objectness = nn.functional.binary_cross_entropy_with_logits(logits[valid], gtLabels[valid].to_type(logits.dtype),
            reduction: nn.Reduction.Sum);
        double normalizer = Settings.BatchSizePerImage * labels.Count;
        return ((objectness / normalizer).MoveToOuterDisposeScope(), (box / normalizer).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Detectron2's find_top_rpn_proposals: per level the top <paramref name="preNmsTopK"/> by logit,
    /// then per image: drop non-finite (an error in training: training diverged), clip to the image,
    /// drop boxes not wider and taller than <paramref name="minBoxSize"/>, NMS within each level,
    /// and keep the best <paramref name="postNmsTopK"/>.
    /// </summary>
    /// <param name="proposals">Per level (N, R_l, 4) decoded boxes.</param>
    /// <param name="logits">Per level (N, R_l) objectness logits.</param>
    public static IReadOnlyList<Instances> FindTopProposals(IReadOnlyList<Tensor> proposals, IReadOnlyList<Tensor> logits,
        IReadOnlyList<(long Height, long Width)> imageSizes, double nmsThreshold, long preNmsTopK, long postNmsTopK,
        double minBoxSize, bool training)
    {
        if (proposals.Count != logits.Count || proposals.Count == 0)
            throw new ArgumentException($"Rpn.FindTopProposals: {proposals.Count} proposal levels but {logits.Count} logit levels.");
        using var scope = NewDisposeScope();
        long n = logits[0].shape[0];
        var device = logits[0].device;
        var topBoxes = new List<Tensor>();
        var topScores = new List<Tensor>();
        var levelIds = new List<Tensor>();
        for (int level = 0; level < logits.Count; level++)
        {
            long k = Math.Min(preNmsTopK, logits[level].shape[1]);
            var (scores, index) = logits[level].topk((int)k, dim: 1);
            var batchIndex = arange(n, device: device).unsqueeze(1);
            topBoxes.Add(proposals[level][batchIndex, index]);
            topScores.Add(scores);
            levelIds.Add(full(k, level, ScalarType.Int64, device));
        }
        var allBoxes = cat(topBoxes.ToArray(), 1);
        var allScores = cat(topScores.ToArray(), 1);
        var allLevels = cat(levelIds.ToArray(), 0);
        var results = new List<Instances>();
        for (int i = 0; i < n; i++)
        {
            var boxes = allBoxes[i];
            var scores = allScores[i];
            var lvl = allLevels;
            var finite = isfinite(boxes).all(1).logical_and(isfinite(scores));
            if (!finite.all().item<bool>())
            {
                if (training)
                    throw new InvalidOperationException("Rpn: predicted boxes or scores contain Inf/NaN; training has diverged.");
                (boxes, scores, lvl) = (boxes[finite], scores[finite], lvl[finite]);
            }
            var (h, w) = imageSizes[i];
            var clipped = new Boxes(boxes).Clip(h, w);
            var keepSize = clipped.NonEmpty(minBoxSize);
            var kept = clipped.Select(keepSize);
            scores = scores[keepSize];
            lvl = lvl[keepSize];
            var keep = Nms.Batched(kept.Tensor, scores, lvl, nmsThreshold);
            if (keep.shape[0] > postNmsTopK)
                keep = keep[..(int)postNmsTopK];
            var inst = new Instances(h, w, kept.Select(keep), scores: scores[keep]);
            inst.Boxes.Tensor.MoveToOuterDisposeScope();
            inst.Scores!.MoveToOuterDisposeScope();
            results.Add(inst);
        }
        return results;
    }
}
