using Vim.Core;

namespace Vim.Data.Evaluation;

/// <summary>
/// The settings of a COCO evaluation, mirroring pycocotools' Params. Thresholds are used exactly as
/// given: float32-rounded values (0.6000000238…) behave differently from the float64 defaults when an
/// IoU lands exactly on a threshold.
/// </summary>
public sealed class CocoEvalParams
{
    /// <summary>IoU thresholds; a match needs IoU ≥ threshold (capped at 1 − 1e−10).</summary>
    public double[] IouThresholds { get; init; } = Linspace(0.5, 0.95, 10);

    /// <summary>Recall points at which interpolated precision is sampled.</summary>
    public double[] RecallThresholds { get; init; } = Linspace(0.0, 1.0, 101);

    /// <summary>Detections kept per image and category; sorted ascending before use.</summary>
    public int[] MaxDetections { get; init; } = [1, 10, 100];

    public AreaRange[] AreaRanges { get; init; } =
    [
        new("all", 0, 1e5 * 1e5),
        new("small", 0, 32 * 32),
        new("medium", 32 * 32, 96 * 96),
        new("large", 96 * 96, 1e5 * 1e5),
    ];

    /// <summary>Categories to evaluate; null = every category of the ground truth.</summary>
    public long[]? CategoryIds { get; init; }

    /// <summary>
    /// pycocotools' useCats: false evaluates class-agnostically (any detection may match any ground
    /// truth, e.g. for proposal recall); results then have the single category id −1.
    /// </summary>
    public bool UseCategories { get; init; } = true;

    /// <summary>Images to evaluate; null = every image of the ground truth.</summary>
    public long[]? ImageIds { get; init; }

    /// <summary>Evenly spaced values computed like numpy.linspace (start + i·step, the last one exactly stop).</summary>
    public static double[] Linspace(double start, double stop, int count)
    {
        var values = new double[count];
        if (count == 1) { values[0] = start; return values; }
        double step = (stop - start) / (count - 1);
        for (int i = 0; i < count; i++) values[i] = i * step + start;
        values[^1] = stop;
        return values;
    }

    internal void Validate()
    {
        if (IouThresholds.Length == 0) throw new VimException("COCO evaluation: at least one IoU threshold is needed.");
        foreach (var t in IouThresholds)
        {
            if (!(t >= 0 && t <= 1)) throw new VimException($"COCO evaluation: IoU threshold {t} is outside [0, 1].");
        }
        if (RecallThresholds.Length == 0) throw new VimException("COCO evaluation: at least one recall threshold is needed.");
        if (MaxDetections.Length == 0) throw new VimException("COCO evaluation: at least one maxDets value is needed.");
        foreach (var m in MaxDetections)
        {
            if (m <= 0) throw new VimException($"COCO evaluation: maxDets must be positive, got {m}.");
        }
        if (AreaRanges.Length == 0) throw new VimException("COCO evaluation: at least one area range is needed.");
    }
}
