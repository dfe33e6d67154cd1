using Vim.Core.Config;

namespace Vim.Data.Transforms;

/// <summary>
/// detectron2's ResizeShortestEdge: the short side to a length drawn from <see cref="ShortEdgeLength"/>, the long side
/// following the aspect ratio but capped at <see cref="MaxSize"/> (the Mask R-CNN recipes' (640…800, 1333); testing (800, 1333)).
/// </summary>
public sealed record ResizeShortestEdgeOptions
{
    /// <summary>Candidate short-side lengths: one length, several for <see cref="SampleStyle.Choice"/>, [min, max] for <see cref="SampleStyle.Range"/>; required.</summary>
    [ScalarOrList]
    public int[]? ShortEdgeLength { get; init; }

    /// <summary>The longest the long side may become; null (detectron2's sys.maxsize) for no cap.</summary>
    public int? MaxSize { get; init; }

    /// <summary>How the length is drawn; detectron2's default, range.</summary>
    public SampleStyle SampleStyle { get; init; } = SampleStyle.Range;

    /// <summary>detectron2's ResizeTransform resamples uint8 images with Pillow.</summary>
    public ImageResampling Resampling { get; init; } = ImageResampling.PillowBilinear;

    /// <summary>Whether every sample gets the same length (one candidate, however often written), as a test step must.</summary>
    public bool SingleLength => ShortEdgeLength is { Length: > 0 } lengths && lengths.All(length => length == lengths[0]);
}

/// <summary>detectron2's sample_style.</summary>
public enum SampleStyle
{
    /// <summary>An integer drawn uniformly in [min, max], both ends included (numpy's randint(min, max + 1)).</summary>
    Range,

    /// <summary>One of the lengths, uniformly (numpy's random.choice).</summary>
    Choice,
}
