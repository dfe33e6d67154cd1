using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's FastRCNNOutputLayers: cls_score Linear(d, K + 1) (index K is background) and bbox_pred Linear(d, 4) with
/// class-agnostic box regression (the cascade's, CLS_AGNOSTIC_BBOX_REG) or Linear(d, 4K), one set of deltas per class
/// (class-specific: Mask R-CNN's default, mmdet's reg_class_agnostic=False), initialised N(0, 0.01²) and N(0, 0.001²)
/// with zero biases; softmax cross-entropy over K + 1 classes and smooth-L1 box loss on the foreground RoIs' deltas
/// (class-specific: each RoI's ground-truth class's four), or an IoU loss on the boxes those deltas decode to.
/// </summary>
public sealed class FastRcnnOutputLayers : nn.Module<Tensor, (Tensor Scores, Tensor Deltas)>
{
    private readonly Linear cls_score;
    private readonly Linear bbox_pred;

    public long NumClasses { get; }
    public Box2BoxTransform BoxCoder { get; }

    /// <summary>Smooth-L1 β of the box loss; 0 (the ViTDet setting) is plain L1.</summary>
    public double SmoothL1Beta { get; }

    /// <summary>One set of deltas for every class (bbox_pred has 4 outputs) rather than one per class (4K).</summary>
    public bool ClassAgnostic { get; }

    /// <summary>Smooth-L1 on the deltas, or an IoU loss on the boxes they decode to (detectron2's BBOX_REG_LOSS_TYPE).</summary>
    public BoxRegressionLossType BoxRegressionLoss { get; }

    public FastRcnnOutputLayers(long inputSize, long numClasses, Box2BoxTransform boxCoder, double smoothL1Beta = 0.0,
        long seed = 0, bool classAgnostic = true, BoxRegressionLossType boxRegressionLoss = BoxRegressionLossType.SmoothL1)
        : base(nameof(FastRcnnOutputLayers))
    {
        if (inputSize < 1 || numClasses < 1)
            throw new ArgumentException(
                $"FastRcnnOutputLayers: input size and class count must be positive, got {inputSize} and {numClasses}.");
        if (smoothL1Beta < 0)
            throw new ArgumentException($"FastRcnnOutputLayers: smooth-L1 beta must be >= 0, got {smoothL1Beta}.", nameof(smoothL1Beta));
        NumClasses = numClasses;
        BoxCoder = boxCoder ?? throw new ArgumentNullException(nameof(boxCoder));
        SmoothL1Beta = smoothL1Beta;
        ClassAgnostic = classAgnostic;
        BoxRegressionLoss = boxRegressionLoss;
        cls_score = nn.Linear(inputSize, numClasses + 1);
        bbox_pred = nn.Linear(inputSize, classAgnostic ? 4 : 4 * numClasses);
        register_module(nameof(cls_score), cls_score);
        register_module(nameof(bbox_pred), bbox_pred);
        var generator = new Generator((ulong)seed);
        using (no_grad())
        {
            cls_score.weight!.normal_(0, 0.01, generator);
            bbox_pred.weight!.normal_(0, 0.001, generator);
            cls_score.bias!.zero_();
            bbox_pred.bias!.zero_();
        }
    }

    /// <param name="x">(R, d) box-head features (higher-rank inputs are flattened from dim 1).</param>
    /// <returns>Class logits (R, K + 1) and deltas: (R, 4) class-agnostic, (R, 4K) class-specific (class k's in columns 4k to 4k + 3).</returns>
    public override (Tensor Scores, Tensor Deltas) forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var flat = x.dim() > 2 ? x.flatten(1) : x;
        return (cls_score.call(flat).MoveToOuterDisposeScope(), bbox_pred.call(flat).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Detectron2's FastRCNNOutputLayers.losses: mean softmax cross-entropy over all R RoIs, and the
    /// smooth-L1 loss of the foreground RoIs' deltas (class in [0, K); class-specific: the deltas of that class alone, so
    /// the other classes' deltas get no gradient from the RoI) summed and divided by R, so
    /// images with few foreground RoIs weigh in proportionally. With no RoI both are a zero that
    /// still depends on the inputs (gradients stay defined).
    /// </summary>
    /// <param name="scores">(R, K + 1) logits.</param>
    /// <param name="deltas">(R, 4) or, class-specific, (R, 4K) predicted deltas.</param>
    /// <param name="proposalBoxes">(R, 4) boxes the deltas refer to.</param>
    /// <param name="gtClasses">(R) int64 targets: [0, K) foreground, K background.</param>
    /// <param name="gtBoxes">(R, 4) matched ground-truth boxes (read for foreground rows only).</param>
    public (Tensor Classification, Tensor BoxRegression) Losses(Tensor scores, Tensor deltas, Tensor proposalBoxes,
        Tensor gtClasses, Tensor gtBoxes)
    {
        long r = scores.shape[0];
        if (deltas.shape[0] != r || proposalBoxes.shape[0] != r || gtClasses.shape[0] != r || gtBoxes.shape[0] != r)
            throw new ArgumentException(
                $"FastRcnnOutputLayers.Losses: scores ({r}), deltas ({deltas.shape[0]}), proposals ({proposalBoxes.shape[0]}), classes ({gtClasses.shape[0]}) and gt boxes ({gtBoxes.shape[0]}) must have one row per RoI.");
        using var scope = NewDisposeScope();
        if (r == 0)
            return ((scores.sum() * 0).MoveToOuterDisposeScope(), (deltas.sum() * 0).MoveToOuterDisposeScope());
        var classes = gtClasses.to_type(ScalarType.Int64);
        var cls = nn.functional.cross_entropy(scores, classes);
        var foreground = classes.ge(0).logical_and(classes.lt(NumClasses));
        var fgProposals = new Boxes(proposalBoxes[foreground]);
        var fgGtBoxes = gtBoxes[foreground].to_type(proposalBoxes.dtype);
        var fgDeltas = DeltasOfClasses(deltas[foreground], classes[foreground]);
        var box = Modeling.BoxRegressionLoss.Sum(BoxRegressionLoss, SmoothL1Beta, BoxCoder, fgDeltas, fgProposals, fgGtBoxes) / r;
        return (cls.MoveToOuterDisposeScope(), box.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// (R, 4) deltas: each row's deltas for its class in <paramref name="classes"/> (each in [0, K)); class-agnostic deltas
    /// are every class's and come back as they are.
    /// </summary>
    /// <param name="deltas">(R, 4) or (R, 4K) deltas as <see cref="forward"/> returns them.</param>
    /// <param name="classes">(R) int64 classes.</param>
    public Tensor DeltasOfClasses(Tensor deltas, Tensor classes)
    {
        if (ClassAgnostic) return deltas;
        if (deltas.dim() != 2 || deltas.shape[1] != 4 * NumClasses || classes.shape[0] != deltas.shape[0])
            throw new ArgumentException(
                $"FastRcnnOutputLayers.DeltasOfClasses: expected (R, {4 * NumClasses}) deltas and R classes, got ({string.Join(", ", deltas.shape)}) and {classes.shape[0]}.");
        using var scope = NewDisposeScope();
        var index = classes.to_type(ScalarType.Int64).view(-1, 1, 1).expand(-1, 1, 4);
        return deltas.view(-1, NumClasses, 4).gather(1, index).squeeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The boxes the deltas give the proposals: (R, 4) class-agnostic, (R, 4K) class-specific (class k's box in columns
    /// 4k to 4k + 3), as detectron2's predict_boxes.
    /// </summary>
    public Tensor PredictBoxes(Tensor deltas, Tensor proposalBoxes) => BoxCoder.ApplyDeltas(deltas, new Boxes(proposalBoxes));

    /// <summary>(R, K + 1) class probabilities (softmax of the logits).</summary>
    public static Tensor PredictProbabilities(Tensor scores) => nn.functional.softmax(scores, -1);
}
