using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// The RPN's result: per image, proposals (boxes, objectness logits as <see cref="Instances.Scores"/>,
/// no gradient) and, when ground truth was given, the objectness loss and the box loss, each already
/// normalised by (sampled anchors per image, batch_size_per_image × images) and weighted, with detectron2's anchor
/// statistics (<see cref="DetectionStatistics.Anchors"/>).
/// </summary>
public sealed record RpnOutput(IReadOnlyList<Instances> Proposals, Tensor? ObjectnessLoss, Tensor? BoxLoss,
    IReadOnlyDictionary<string, Tensor>? Statistics = null);
