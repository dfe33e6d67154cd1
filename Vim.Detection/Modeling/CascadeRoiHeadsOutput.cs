using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Result of <see cref="CascadeRoiHeads.Forward"/>. Training: <see cref="Losses"/> named as in
/// Detectron2 (loss_cls_stage{k}, loss_box_reg_stage{k}, loss_mask; with one stage loss_cls, loss_box_reg) beside detectron2's
/// training statistics (<see cref="DetectionStatistics"/>: logged, never minimised) and no detections. Inference:
/// no losses and, per image, the detections (boxes clipped to the image, classes, scores and, with
/// the mask head, (N, 28, 28) mask probabilities for the detected class, still to be pasted).
/// </summary>
public sealed record CascadeRoiHeadsOutput(IReadOnlyDictionary<string, Tensor> Losses, IReadOnlyList<Instances>? Detections);
