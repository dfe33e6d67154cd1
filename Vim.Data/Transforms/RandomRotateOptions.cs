using Vim.Core.Config;

namespace Vim.Data.Transforms;

/// <summary>
/// mmseg RandomRotate (mmcv.imrotate): with probability <see cref="Prob"/>, rotate by an angle drawn uniformly from
/// <see cref="Degree"/>. Positive angles turn the image clockwise on screen, as mmcv's do.
/// </summary>
public sealed record RandomRotateOptions
{
    /// <summary>Probability of rotating; required, as in mmseg.</summary>
    public double? Prob { get; init; }

    /// <summary>One positive number d for the range [−d, d], or [min, max] in degrees; required.</summary>
    [ScalarOrList]
    public double[]? Degree { get; init; }

    /// <summary>Fill of the image where the rotated image does not reach, in every channel.</summary>
    public int PadVal { get; init; }

    /// <summary>Fill of the label map there: the ignore index.</summary>
    public int SegPadVal { get; init; } = 255;

    /// <summary>[x, y] of the rotation centre in pixel indices; null for the image's middle.</summary>
    public double[]? Center { get; init; }

    /// <summary>Grow or shrink the canvas to hold the whole rotated image (rotating about the middle; excludes <see cref="Center"/>).</summary>
    public bool AutoBound { get; init; }
}
