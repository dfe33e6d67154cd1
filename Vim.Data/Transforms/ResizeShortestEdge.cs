using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>detectron2's ResizeShortestEdge (see <see cref="ResizeShortestEdgeOptions"/>), with its size arithmetic.</summary>
public sealed class ResizeShortestEdge : ISampleTransform
{
    private readonly ResizeShortestEdgeOptions _options;
    private readonly int[] _lengths;

    public ResizeShortestEdgeOptions Options => _options;

    public ResizeShortestEdge(ResizeShortestEdgeOptions options)
    {
        if (options.ShortEdgeLength is not { Length: > 0 } lengths)
            throw new ArgumentException("ResizeShortestEdge needs short_edge_length (one length, or several: the short side's candidates in pixels).");
        if (lengths.Any(length => length <= 0))
            throw new ArgumentException($"ResizeShortestEdge short_edge_length [{string.Join(", ", lengths)}] must be positive lengths.");
        if (options.MaxSize is <= 0)
            throw new ArgumentException($"ResizeShortestEdge max_size {options.MaxSize} must be positive (null for no cap).");
        if (options.SampleStyle == SampleStyle.Range && lengths.Length > 2)
            throw new ArgumentException($"ResizeShortestEdge sample_style range draws between [min, max] and takes one or two lengths, got {lengths.Length}; " +
                "several lengths to pick one of: sample_style choice");
        if (options.SampleStyle == SampleStyle.Range && lengths is [var min, var max] && max < min)
            throw new ArgumentException($"ResizeShortestEdge short_edge_length [{min}, {max}] with sample_style range must be [min, max], min <= max.");
        _options = options;
        _lengths = lengths;
    }

    public void Apply(DataSample sample, Random random)
    {
        var (height, width) = OutputShape(sample.Height, sample.Width, DrawLength(random), _options.MaxSize);
        SampleGeometry.ResizeTo(sample, height, width, _options.Resampling);
    }

    private int DrawLength(Random random) => _options.SampleStyle == SampleStyle.Range
        ? RandomDraws.Integer(random, _lengths[0], _lengths[^1])
        : _lengths[random.Next(_lengths.Length)];

    /// <summary>
    /// detectron2's get_output_shape: the short side to <paramref name="shortEdge"/>, the long side by the aspect ratio, both
    /// shrunk together where the long side passes <paramref name="maxSize"/>, then each rounded half up (int(x + 0.5)).
    /// </summary>
    public static (int Height, int Width) OutputShape(int height, int width, int shortEdge, int? maxSize)
    {
        double scale = (double)shortEdge / Math.Min(height, width);
        double newH, newW;
        if (height < width) (newH, newW) = (shortEdge, scale * width);
        else (newH, newW) = (scale * height, shortEdge);
        if (maxSize is { } cap && Math.Max(newH, newW) > cap)
        {
            double shrink = (double)cap / Math.Max(newH, newW);
            newH *= shrink;
            newW *= shrink;
        }
        return ((int)(newH + 0.5), (int)(newW + 0.5));
    }
}
