using Vim.Core.Config;

namespace Vim.Data.Transforms;

/// <summary>
/// mmseg RandomCutOut (mmdet's CutOut with prob 1 and no label map): with probability <see cref="Prob"/>, fill
/// <see cref="NHoles"/> rectangles at uniform top-left corners, each of a size drawn from the candidates of exactly one of
/// <see cref="CutoutShape"/> and <see cref="CutoutRatio"/>. Boxes and masks are left as they are, as in mmdet.
/// </summary>
public sealed record RandomCutoutOptions
{
    /// <summary>Probability of cutting holes; required, as in mmseg.</summary>
    public double? Prob { get; init; }

    /// <summary>A hole count n, or [min, max] for a count drawn from that closed range; required.</summary>
    [ScalarOrList]
    public int[]? NHoles { get; init; }

    /// <summary>Candidate hole sizes [[width, height], …] in pixels, one drawn per hole.</summary>
    public List<int[]>? CutoutShape { get; init; }

    /// <summary>Candidate hole sizes [[width ratio, height ratio], …] of the image's width and height, one drawn per hole.</summary>
    public List<double[]>? CutoutRatio { get; init; }

    /// <summary>The holes' colour, [r, g, b] (our images are RGB; an mmseg config's fill_in is (b, g, r)), or one value for all three.</summary>
    [ScalarOrList]
    public int[] FillIn { get; init; } = [0, 0, 0];

    /// <summary>The label the holes get in the label map; null leaves the label map alone.</summary>
    public int? SegFillIn { get; init; }
}
