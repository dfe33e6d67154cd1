using Vim.Core.Checkpoints;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's CascadeROIHeads with a mask head. Training: the RPN proposals plus the ground-truth
/// boxes are matched at the first stage's IoU and sampled once (BatchSizePerImage, PositiveFraction);
/// every later stage takes the previous stage's refined boxes (detached, clipped, empty ones
/// dropped) and re-labels them with its own IoU threshold without resampling. The pooled features
/// enter each stage through a 1/stages gradient scale, and the stage losses are returned unweighted unless
/// <see cref="CascadeRoiHeadsSettings.StageLossWeights"/> (mmdet's stage_loss_weights) weighs them; the mask loss, of the
/// one mask head, takes no stage weight.
/// The mask head trains on the foreground of the first stage's sampled proposals, as Detectron2's
/// CascadeROIHeads.forward passes those (not the refined boxes) to _forward_mask.
/// Inference: class probabilities averaged over the stages, boxes from the last stage's regression,
/// then <see cref="FastRcnnInference"/> and, with the mask head, mask probabilities of the detected
/// class at the detected boxes.
/// One stage is detectron2's StandardROIHeads (Mask R-CNN; Faster R-CNN without the mask head): the gradient scale
/// 1/1 leaves the features' gradient alone, the scores are the stage's own, and the losses take StandardROIHeads'
/// names (loss_cls, loss_box_reg). Class-specific regression (<see cref="CascadeRoiHeadsSettings.ClassAgnosticBoxRegression"/>
/// false) trains each foreground RoI's ground-truth class's deltas and detects each (RoI, class) pair at its own class's
/// box; a later stage's proposals are refined with one class's deltas per RoI, as mmdet's CascadeRoIHead does
/// (<see cref="RefinementClasses"/>; detectron2's CascadeROIHeads refuses class-specific regression).
/// Keys: box_head.{k}.*, box_predictor.{k}.*, mask_head.*, whatever the stage count.
/// </summary>
public sealed class CascadeRoiHeads : nn.Module
{
    private readonly ModuleList<FastRcnnConvFcHead> box_head;
    private readonly ModuleList<FastRcnnOutputLayers> box_predictor;
    private readonly MaskRcnnConvUpsampleHead? mask_head;
    private readonly Matcher[] matchers;
    private readonly long inChannels;

    public CascadeRoiHeadsSettings Settings { get; }
    public MultiScaleRoiAlign BoxPooler { get; }
    public MultiScaleRoiAlign MaskPooler { get; }
    public BalancedPositiveNegativeSampler Sampler { get; }
    public int NumStages => matchers.Length;
    public IReadOnlyList<Matcher> StageMatchers => matchers;
    public IReadOnlyList<FastRcnnOutputLayers> Predictors => box_predictor.ToList();
    public MaskRcnnConvUpsampleHead? MaskHead => mask_head;

    /// <param name="inChannels">Channels of the pyramid maps (256).</param>
    /// <param name="seed">Seed of the weight init; stage k and the mask head draw from derived seeds.</param>
    public CascadeRoiHeads(long inChannels, CascadeRoiHeadsSettings? settings = null, long seed = 0) : base(nameof(CascadeRoiHeads))
    {
        Settings = settings ?? new CascadeRoiHeadsSettings();
        this.inChannels = inChannels;
        var s = Settings;
        if (s.NumClasses < 1)
            throw new ArgumentException($"CascadeRoiHeads: NumClasses must be positive, got {s.NumClasses}.");
        if (s.StageIouThresholds.Count == 0 || s.StageIouThresholds.Count != s.StageBoxWeights.Count)
            throw new ArgumentException(
                $"CascadeRoiHeads: need one IoU threshold and one box-weight set per stage, got {s.StageIouThresholds.Count} thresholds and {s.StageBoxWeights.Count} weight sets.");
        if (s.StageIouThresholds.Any(t => !(t > 0 && t <= 1)))
            throw new ArgumentException($"CascadeRoiHeads: stage IoU thresholds must be in (0, 1], got [{string.Join(", ", s.StageIouThresholds)}].");
        if (s.StageLossWeights is { } stageWeights && (stageWeights.Count != s.StageIouThresholds.Count || stageWeights.Any(w => !(w >= 0) || double.IsPositiveInfinity(w))))
            throw new ArgumentException(
                $"CascadeRoiHeads: need one finite stage loss weight >= 0 per stage ({s.StageIouThresholds.Count}), got [{string.Join(", ", stageWeights)}].");
        matchers = s.StageIouThresholds.Select(t => new Matcher(new[] { t }, new[] { 0, 1 }, allowLowQualityMatches: false)).ToArray();
        Sampler = new BalancedPositiveNegativeSampler(s.BatchSizePerImage, s.PositiveFraction);
        BoxPooler = new MultiScaleRoiAlign(s.BoxPoolerResolution, s.PoolerScales, s.PoolerSamplingRatio, aligned: true);
        MaskPooler = new MultiScaleRoiAlign(s.MaskPoolerResolution, s.PoolerScales, s.PoolerSamplingRatio, aligned: true);
        var heads = new List<FastRcnnConvFcHead>();
        var predictors = new List<FastRcnnOutputLayers>();
        try
        {
            for (int k = 0; k < matchers.Length; k++)
            {
                var head = new FastRcnnConvFcHead(inChannels, s.BoxPoolerResolution, s.BoxHeadConvDims, s.BoxHeadFcDims, seed * 16 + 2 * k);
                var w = s.StageBoxWeights[k];
                heads.Add(head);
                predictors.Add(new FastRcnnOutputLayers(head.OutputSize, s.NumClasses, new Box2BoxTransform(w.X, w.Y, w.W, w.H),
                    s.SmoothL1Beta, seed * 16 + 2 * k + 1, s.ClassAgnosticBoxRegression, s.BoxRegressionLoss));
            }
            if (s.MaskOn)
                mask_head = new MaskRcnnConvUpsampleHead(inChannels, s.NumClasses, s.MaskHeadConvDims, seed * 16 + 15);
        }
        catch
        {
            // A later head's settings were rejected: no caller gets these heads, so their tensors would outlive the error.
            foreach (var built in heads.Concat<nn.Module>(predictors)) built.Dispose();
            throw;
        }
        box_head = nn.ModuleList(heads.ToArray());
        box_predictor = nn.ModuleList(predictors.ToArray());
        register_module(nameof(box_head), box_head);
        register_module(nameof(box_predictor), box_predictor);
        if (mask_head is not null)
            register_module(nameof(mask_head), mask_head);
    }

    /// <param name="features">p2…p5 maps (N, C, H_l, W_l), finest first, one per pooler scale.</param>
    /// <param name="proposals">Per image: the RPN proposals (their image size is the image's valid size).</param>
    /// <param name="targets">Per image ground truth (boxes, int64 classes, and (G, H, W) bitmasks when the mask head is on); required in training.</param>
    /// <param name="generator">Random source of the RoI sampling.</param>
    public CascadeRoiHeadsOutput Forward(IReadOnlyList<Tensor> features, IReadOnlyList<Instances> proposals,
        IReadOnlyList<Instances>? targets = null, Generator? generator = null)
    {
        if (features.Count != Settings.PoolerScales.Count)
            throw new ArgumentException($"CascadeRoiHeads: {features.Count} feature maps given, {Settings.PoolerScales.Count} pooler scales configured.", nameof(features));
        if (proposals.Count != features[0].shape[0])
            throw new ArgumentException($"CascadeRoiHeads: {proposals.Count} proposal lists given for a batch of {features[0].shape[0]}.", nameof(proposals));
        // Not a forward: the RoI heads' FLOP scope (RoIAlign counts into it) is opened here.
        using var counted = FlopCounter.Within(this);
        if (!training)
            return new CascadeRoiHeadsOutput(new Dictionary<string, Tensor>(), Infer(features, proposals));
        if (targets is null || targets.Count != proposals.Count)
            throw new ArgumentException(
                $"CascadeRoiHeads: training needs one ground-truth set per image ({proposals.Count}), got {targets?.Count.ToString() ?? "none"}.", nameof(targets));
        for (int i = 0; i < targets.Count; i++)
        {
            if (targets[i].Classes is null)
                throw new ArgumentException($"CascadeRoiHeads: ground truth of image {i} has no classes.", nameof(targets));
            if (mask_head is not null && targets[i].Masks is null)
                throw new ArgumentException($"CascadeRoiHeads: ground truth of image {i} has no masks but the mask head is on.", nameof(targets));
        }
        return new CascadeRoiHeadsOutput(Train(features, proposals, targets, generator), null);
    }

    /// <summary>
    /// Detectron2's label_and_sample_proposals with the first stage's matcher: ground-truth boxes
    /// appended to the proposals, IoU matching, class targets (K for background, −1 ignored), then the
    /// balanced sample.
    /// </summary>
    public IReadOnlyList<LabeledProposals> LabelAndSampleProposals(IReadOnlyList<Instances> proposals,
        IReadOnlyList<Instances> targets, Generator? generator)
    {
        var result = new List<LabeledProposals>();
        long background = Settings.NumClasses;
        for (int i = 0; i < proposals.Count; i++)
        {
            using var scope = NewDisposeScope();
            var boxes = proposals[i].Boxes.Tensor.detach();
            var gt = targets[i];
            var gtBoxes = gt.Boxes.Tensor.to(boxes.device).to_type(boxes.dtype);
            if (Settings.ProposalAppendGt)
                boxes = cat(new[] { boxes, gtBoxes }, 0);
            var match = matchers[0].Match(BoxGeometry.PairwiseIou(new Boxes(gtBoxes), new Boxes(boxes)));
            var classes = ClassTargets(match, gt.Classes!.to(boxes.device), gt.Count, background);
            var (positive, negative) = Sampler.Sample(classes, background, generator);
            var index = cat(new[] { positive, negative }, 0);
            var matched = match.Matches[index];
            var sampledBoxes = boxes[index];
            var labeled = new LabeledProposals(new Boxes(sampledBoxes.MoveToOuterDisposeScope()),
                classes[index].MoveToOuterDisposeScope(),
                (gt.Count > 0 ? gtBoxes[matched] : sampledBoxes.clone()).MoveToOuterDisposeScope(),
                matched.MoveToOuterDisposeScope());
            result.Add(labeled);
        }
        return result;
    }

    /// <summary>
    /// Detectron2's _match_and_label_boxes: labels the boxes of a later stage with that stage's
    /// matcher (foreground at IoU ≥ its threshold, background below), no sampling.
    /// </summary>
    public IReadOnlyList<LabeledProposals> MatchAndLabel(int stage, IReadOnlyList<Boxes> boxes, IReadOnlyList<Instances> targets)
    {
        if (stage < 0 || stage >= NumStages)
            throw new ArgumentException($"CascadeRoiHeads: stage must be in [0, {NumStages}), got {stage}.", nameof(stage));
        var result = new List<LabeledProposals>();
        for (int i = 0; i < boxes.Count; i++)
        {
            using var scope = NewDisposeScope();
            var b = boxes[i].Tensor;
            var gt = targets[i];
            var gtBoxes = gt.Boxes.Tensor.to(b.device).to_type(b.dtype);
            var match = matchers[stage].Match(BoxGeometry.PairwiseIou(new Boxes(gtBoxes), boxes[i]));
            var classes = ClassTargets(match, gt.Classes!.to(b.device), gt.Count, Settings.NumClasses);
            result.Add(new LabeledProposals(boxes[i], classes.MoveToOuterDisposeScope(),
                (gt.Count > 0 ? gtBoxes[match.Matches] : b.clone()).MoveToOuterDisposeScope(),
                match.Matches.MoveToOuterDisposeScope()));
        }
        return result;
    }

    private static Tensor ClassTargets(MatchResult match, Tensor gtClasses, long gtCount, long background)
    {
        using var scope = NewDisposeScope();
        if (gtCount == 0)
            return full_like(match.Matches, background).MoveToOuterDisposeScope();
        var classes = gtClasses.to_type(ScalarType.Int64)[match.Matches];
        classes.masked_fill_(match.Labels.eq(0), background);
        classes.masked_fill_(match.Labels.eq(-1), -1);
        return classes.MoveToOuterDisposeScope();
    }

    /// <summary>Pools the boxes and runs stage <paramref name="stage"/>'s head and predictor (at inference a chunk of RoIs at a time: <see cref="InChunks"/>).</summary>
    public (Tensor Scores, Tensor Deltas) RunStage(IReadOnlyList<Tensor> features, IReadOnlyList<Boxes> boxes, int stage)
    {
        using var scope = NewDisposeScope();
        if (!training)
        {
            var outputs = InChunks(BoxPooler, features, boxes, InferenceChunkRois(mask: false, features[0].dtype), (pooled, _, _) =>
            {
                var (chunkScores, chunkDeltas) = box_predictor[stage].call(box_head[stage].call(pooled));
                return [chunkScores, chunkDeltas];
            });
            return (outputs[0].MoveToOuterDisposeScope(), outputs[1].MoveToOuterDisposeScope());
        }
        var pooled = BoxPooler.Forward(features, boxes);
        // One stage (StandardROIHeads) scales by 1: no node for it.
        if (NumStages > 1)
            pooled = ScaleGradient.Apply(pooled, 1.0 / NumStages);
        var (scores, deltas) = box_predictor[stage].call(box_head[stage].call(pooled));
        return (scores.MoveToOuterDisposeScope(), deltas.MoveToOuterDisposeScope());
    }

    private Dictionary<string, Tensor> Train(IReadOnlyList<Tensor> features, IReadOnlyList<Instances> proposals,
        IReadOnlyList<Instances> targets, Generator? generator)
    {
        using var scope = NewDisposeScope();
        var losses = new Dictionary<string, Tensor>();
        IReadOnlyList<LabeledProposals> sampled;
        using (StageProfiler.Measure(DetectionStages.RoiTargets))
            sampled = LabelAndSampleProposals(proposals, targets, generator);
        var labeled = sampled;
        // detectron2's EventStorage scalars, logged beside the losses (none is named a loss, so none is minimised).
        var statistics = new Dictionary<string, Tensor>();
        Tensor? previousDeltas = null, previousScores = null, previousClasses = null;
        for (int k = 0; k < NumStages; k++)
        {
            if (k > 0)
                using (StageProfiler.Measure(DetectionStages.RoiTargets))
                    labeled = MatchAndLabel(k, Refine(labeled.Select(l => l.Boxes).ToList(), proposals, k - 1, previousDeltas!, previousScores!,
                    previousClasses, dropEmpty: true), targets);
            using var marks = BackwardProfiler.Open($"box_stage{k}");
            var (scores, deltas) = RunStage(features.Select(marks.Input).ToList(), labeled.Select(l => l.Boxes).ToList(), k);
            var gtClasses = cat(labeled.Select(l => l.GtClasses).ToArray(), 0);
            foreach (var (name, value) in DetectionStatistics.Samples(labeled.Select(l => l.GtClasses).ToList(), Settings.NumClasses, k))
                statistics[name] = value;
            foreach (var (name, value) in DetectionStatistics.Classification(scores, gtClasses, NumStages == 1 ? "" : $"stage{k}/"))
                statistics[name] = value;
            var (cls, box) = box_predictor[k].Losses(scores, deltas, cat(labeled.Select(l => l.Boxes.Tensor).ToArray(), 0),
                gtClasses, cat(labeled.Select(l => l.GtBoxes).ToArray(), 0));
            double stageWeight = Settings.StageLossWeights?[k] ?? 1.0;
            losses[StageLossName("loss_cls", k)] = marks.Output(cls * (Settings.ClassificationLossWeight * stageWeight));
            losses[StageLossName("loss_box_reg", k)] = marks.Output(box * (Settings.BoxLossWeight * stageWeight));
            (previousDeltas, previousScores, previousClasses) = (deltas.detach(), scores.detach(), gtClasses);
        }
        if (mask_head is not null)
            using (var marks = BackwardProfiler.Open(DetectionStages.MaskHead))
                losses["loss_mask"] = marks.Output(MaskLoss(features.Select(marks.Input).ToList(), sampled, targets, statistics) * Settings.MaskLossWeight);
        foreach (var (name, value) in statistics) losses[name] = value;
        foreach (var loss in losses.Values)
            loss.MoveToOuterDisposeScope();
        return losses;
    }

    /// <summary>
    /// Detectron2's loss names: StandardROIHeads' (loss_cls, loss_box_reg) for one stage, CascadeROIHeads'
    /// (loss_cls_stage{k}, loss_box_reg_stage{k}) for several.
    /// </summary>
    public string StageLossName(string loss, int stage) => NumStages == 1 ? loss : $"{loss}_stage{stage}";

    /// <summary>
    /// Under class-specific regression, the class whose deltas refine each RoI into the next stage's proposal, as mmdet's
    /// CascadeRoIHead chooses it for regress_by_class: in training a foreground RoI's ground-truth class, and for every
    /// other RoI (at inference every RoI) the foreground class this stage scores highest.
    /// </summary>
    /// <param name="scores">(R, K + 1) logits of the stage.</param>
    /// <param name="gtClasses">(R) int64 training targets ([0, K) foreground, K background); null at inference.</param>
    public static Tensor RefinementClasses(Tensor scores, Tensor? gtClasses)
    {
        using var scope = NewDisposeScope();
        long numClasses = scores.shape[1] - 1;
        var predicted = scores[.., ..^1].argmax(1);
        if (gtClasses is null) return predicted.MoveToOuterDisposeScope();
        var foreground = gtClasses.ge(0).logical_and(gtClasses.lt(numClasses));
        return where(foreground, gtClasses.to_type(ScalarType.Int64), predicted).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The previous stage's boxes turned into this stage's proposals: its deltas applied (no
    /// gradient; class-specific: the deltas of each RoI's <see cref="RefinementClasses"/> class), clipped to the image,
    /// and in training the empty ones dropped (at inference they are kept so the stages' scores stay aligned row by row).
    /// </summary>
    private List<Boxes> Refine(IReadOnlyList<Boxes> boxes, IReadOnlyList<Instances> images, int previousStage, Tensor deltas,
        Tensor scores, Tensor? gtClasses, bool dropEmpty)
    {
        using var noGrad = no_grad();
        var predictor = box_predictor[previousStage];
        var chosen = predictor.ClassAgnostic ? deltas : predictor.DeltasOfClasses(deltas, RefinementClasses(scores, gtClasses));
        var predicted = predictor.PredictBoxes(chosen.detach(), cat(boxes.Select(b => b.Tensor).ToArray(), 0));
        var result = new List<Boxes>();
        long offset = 0;
        for (int i = 0; i < boxes.Count; i++)
        {
            long count = boxes[i].Count;
            var clipped = new Boxes(predicted.narrow(0, offset, count)).Clip(images[i].ImageHeight, images[i].ImageWidth);
            offset += count;
            result.Add(dropEmpty ? clipped.Select(clipped.NonEmpty()) : clipped);
        }
        return result;
    }

    private Tensor MaskLoss(IReadOnlyList<Tensor> features, IReadOnlyList<LabeledProposals> sampled, IReadOnlyList<Instances> targets,
        Dictionary<string, Tensor> statistics)
    {
        using var scope = NewDisposeScope();
        var fgBoxes = new List<Boxes>();
        var fgClasses = new List<Tensor>();
        var maskTargets = new List<Tensor>();
        long size = 2 * Settings.MaskPoolerResolution;
        for (int i = 0; i < sampled.Count; i++)
        {
            var l = sampled[i];
            var fg = l.GtClasses.ge(0).logical_and(l.GtClasses.lt(Settings.NumClasses));
            var boxes = l.Boxes.Select(fg);
            fgBoxes.Add(boxes);
            fgClasses.Add(l.GtClasses[fg]);
            using (StageProfiler.Measure(DetectionStages.MaskTargets))
                maskTargets.Add(MaskTargets.ForRois(targets[i].Masks!, targets[i].Outlines, boxes.Tensor, l.GtIndex[fg], size).to(boxes.Tensor.device));
        }
        var logits = mask_head!.call(MaskPooler.Forward(features, fgBoxes));
        var classes = cat(fgClasses.ToArray(), 0);
        var allTargets = cat(maskTargets.ToArray(), 0);
        var loss = MaskRcnnConvUpsampleHead.Loss(logits, classes, allTargets);
        foreach (var (name, value) in DetectionStatistics.Mask(MaskRcnnConvUpsampleHead.SelectClass(logits.detach(), classes), allTargets))
            statistics[name] = value.MoveToOuterDisposeScope();
        return loss.MoveToOuterDisposeScope();
    }

    private List<Instances> Infer(IReadOnlyList<Tensor> features, IReadOnlyList<Instances> proposals)
    {
        var detections = DetectBoxes(features, proposals);
        if (mask_head is null) return detections;
        using var scope = NewDisposeScope();
        var masks = MaskProbabilities(features, detections);
        long offset = 0;
        for (int i = 0; i < detections.Count; i++)
        {
            var d = detections[i];
            detections[i] = new Instances(d.ImageHeight, d.ImageWidth, d.Boxes, d.Classes, d.Scores, masks.narrow(0, offset, d.Count).MoveToOuterDisposeScope());
            offset += d.Count;
        }
        return detections;
    }

    /// <summary>
    /// Inference without the mask head: per image, the detections (boxes in the image's input coordinates, classes,
    /// scores) of the cascade. Test-time augmentation merges these over its passes before any mask is predicted.
    /// </summary>
    /// <param name="features">p2…p5 maps of the images.</param>
    /// <param name="proposals">Per image: the RPN proposals.</param>
    public List<Instances> DetectBoxes(IReadOnlyList<Tensor> features, IReadOnlyList<Instances> proposals)
    {
        // Its RoIAlign reports to the FLOP counter from outside a module's call: the scope names this module.
        using var counted = FlopCounter.Within(this);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        List<Boxes> boxes = proposals.Select(p => p.Boxes).ToList();
        Tensor? probabilities = null;
        Tensor? deltas = null, stageScores = null;
        for (int k = 0; k < NumStages; k++)
        {
            using var stage = StageProfiler.Measure(DetectionStages.CascadeStage(k));
            if (k > 0)
                boxes = Refine(boxes, proposals, k - 1, deltas!, stageScores!, gtClasses: null, dropEmpty: false);
            (stageScores, deltas) = RunStage(features, boxes, k);
            var p = FastRcnnOutputLayers.PredictProbabilities(stageScores);
            probabilities = probabilities is null ? p : probabilities + p;
        }
        var detections = new List<Instances>();
        using (StageProfiler.Measure(DetectionStages.BoxInference))
        {
            // One stage: p / 1 is p to the bit.
            probabilities = probabilities! / NumStages;
            var finalBoxes = box_predictor[NumStages - 1].PredictBoxes(deltas!, cat(boxes.Select(b => b.Tensor).ToArray(), 0));
            long start = 0;
            for (int i = 0; i < proposals.Count; i++)
            {
                long count = boxes[i].Count;
                var (det, _) = FastRcnnInference.SingleImage(finalBoxes.narrow(0, start, count), probabilities.narrow(0, start, count),
                    proposals[i].ImageHeight, proposals[i].ImageWidth, Settings.TestScoreThreshold, Settings.TestNmsThreshold,
                    Settings.DetectionsPerImage, Settings.TestSoftNms);
                start += count;
                detections.Add(det);
            }
        }
        foreach (var d in detections)
        {
            d.Boxes.Tensor.MoveToOuterDisposeScope();
            d.Classes!.MoveToOuterDisposeScope();
            d.Scores!.MoveToOuterDisposeScope();
        }
        return detections;
    }

    /// <summary>
    /// The mask head at given boxes: (N, M, M) probabilities of each detection's class, the images' detections in order
    /// (boxes in each image's input coordinates, as <paramref name="features"/> were computed). Test-time augmentation runs
    /// it on the merged boxes in every pass, as detectron2's forward_with_given_boxes.
    /// </summary>
    public Tensor MaskProbabilities(IReadOnlyList<Tensor> features, IReadOnlyList<Instances> detections)
    {
        if (mask_head is null) throw new InvalidOperationException("CascadeRoiHeads: the mask head is off (MaskOn false); there are no mask probabilities.");
        using var counted = FlopCounter.Within(this);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var stage = StageProfiler.Measure(DetectionStages.MaskHead);
        var classes = cat(detections.Select(d => d.Classes!).ToArray(), 0);
        return InChunks(MaskPooler, features, detections.Select(d => d.Boxes).ToList(), InferenceChunkRois(mask: true, features[0].dtype), (pooled, start, count) =>
            [MaskRcnnConvUpsampleHead.SelectClass(mask_head.call(pooled), classes.narrow(0, start, count)).sigmoid()])[0].MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The most bytes a chunk of RoIs may take in any one activation of a head at inference: glibc serves larger blocks with
    /// fresh mmapped pages (above <see cref="NativeHeapPolicy.MmapThresholdBytes"/>, its largest threshold), which fault
    /// on first touch and are unmapped when freed, so such a tensor costs page faults every time it is made.
    /// </summary>
    private const long ChunkBytes = NativeHeapPolicy.MmapThresholdBytes;

    /// <summary>
    /// How many RoIs the box heads (or, with <paramref name="mask"/>, the mask head) take at once at inference on features
    /// of <paramref name="dtype"/> (<see cref="InChunks"/>): as many as keep the head's largest activation per RoI (the
    /// pooled features, a conv's or an fc's output; for the mask head also the deconv's and the logits at twice the
    /// pooled side) within <see cref="ChunkBytes"/> together, at least one.
    /// </summary>
    public long InferenceChunkRois(bool mask, ScalarType dtype)
    {
        var s = Settings;
        long elements = mask
            ? Math.Max(Math.Max(inChannels, s.MaskHeadConvDims.Max()) * s.MaskPoolerResolution * s.MaskPoolerResolution,
                Math.Max(s.MaskHeadConvDims[^1], s.NumClasses) * 4 * s.MaskPoolerResolution * s.MaskPoolerResolution)
            : Math.Max(Math.Max(inChannels, s.BoxHeadConvDims.DefaultIfEmpty(0).Max()) * s.BoxPoolerResolution * s.BoxPoolerResolution,
                s.BoxHeadFcDims.DefaultIfEmpty(0).Max());
        return Math.Max(1, ChunkBytes / (elements * CheckpointDTypes.ElementSize(dtype)));
    }

    /// <summary>
    /// <paramref name="head"/> over the RoIs' pooled features at inference, a chunk of RoIs at a time, so that no activation
    /// exceeds <see cref="ChunkBytes"/>. Pooled all at once, a batch's RoIs make tensors past the mmap threshold that one
    /// image's do not (4 images × 200 RoIs × 256 channels × 7² floats: 40 MB; the mask head's 14² and 28² maps at a few
    /// dozen detections per image), and their page faults made the box stages and mask head of a batch slower per image
    /// than one image's. Each RoI's outputs are its own row of the heads' convs and linears, so chunks change only how
    /// libtorch blocks those products.
    /// </summary>
    /// <param name="perChunk">RoIs per chunk (<see cref="InferenceChunkRois"/>).</param>
    /// <param name="head">The outputs of one chunk: its pooled features and the chunk's first row and row count among all RoIs.</param>
    /// <returns>Each output of <paramref name="head"/> over every RoI, in row order.</returns>
    private static Tensor[] InChunks(MultiScaleRoiAlign pooler, IReadOnlyList<Tensor> features, IReadOnlyList<Boxes> boxes, long perChunk,
        Func<Tensor, long, long, Tensor[]> head)
    {
        if (boxes.Count != features[0].shape[0])
            throw new ArgumentException($"CascadeRoiHeads: {boxes.Count} box lists given for a batch of {features[0].shape[0]} images.", nameof(boxes));
        using var scope = NewDisposeScope();
        var rois = RoiAlign.BoxesToRois(boxes);
        long rows = rois.shape[0];
        var chunks = new List<Tensor[]>();
        // No RoI is one empty chunk: the head still gives its outputs' shapes.
        for (long start = 0; start == 0 || start < rows; start += perChunk)
        {
            long count = Math.Min(perChunk, rows - start);
            chunks.Add(head(pooler.Forward(features, rois.narrow(0, start, count)), start, count));
        }
        var outputs = chunks.Count == 1 ? chunks[0] : chunks[0].Select((_, k) => cat(chunks.Select(chunk => chunk[k]).ToArray(), 0)).ToArray();
        foreach (var output in outputs) output.MoveToOuterDisposeScope();
        return outputs;
    }
}
