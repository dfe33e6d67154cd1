using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// For each of N predictions: <see cref="Matches"/> (int64) the index of its best ground-truth box,
/// and <see cref="Labels"/> (int8) the label of the IoU band it fell into (e.g. 1 positive,
/// 0 negative, −1 ignore).
/// </summary>
public sealed record MatchResult(Tensor Matches, Tensor Labels);
