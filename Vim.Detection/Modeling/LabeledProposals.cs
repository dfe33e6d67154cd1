using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// The RoIs of one image with their training targets: <see cref="GtClasses"/> (R) int64 in [0, K)
/// for foreground and K for background, <see cref="GtBoxes"/> (R, 4) the matched ground-truth boxes
/// (the RoI itself when the image has no ground truth), <see cref="GtIndex"/> (R) int64 the index
/// of the matched ground-truth instance (0 without ground truth; meaningful for foreground only).
/// </summary>
public sealed record LabeledProposals(Boxes Boxes, Tensor GtClasses, Tensor GtBoxes, Tensor GtIndex);
