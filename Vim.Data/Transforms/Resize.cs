using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>Resize with keep-ratio, multi-scale choice or range, or a random ratio range (see <see cref="ResizeOptions"/>).</summary>
public sealed class Resize : ISampleTransform
{
    private readonly ResizeOptions _options;

    public ResizeOptions Options => _options;

    public Resize(ResizeOptions options)
    {
        if (options.Scales.Count == 0) throw new ArgumentException("Resize needs at least one scale.");
        foreach (var s in options.Scales)
            if (s.Length != 2 || s[0] <= 0 || s[1] <= 0) throw new ArgumentException($"Resize scale [{string.Join(", ", s)}] must be two positive sizes.");
        // Checked before ratio_range's one-scale rule: a range resize has two scales, and "needs exactly one scale" would
        // send its author to delete the wrong thing.
        if (options.MultiscaleMode == MultiscaleMode.Range && options.RatioRange is not null)
            throw new ArgumentException("Resize multiscale_mode range and ratio_range are two ways to draw the scale; set one of them.");
        if (options.RatioRange is { } r)
        {
            if (r.Length != 2 || r[0] <= 0 || r[1] < r[0]) throw new ArgumentException($"Resize ratio_range [{string.Join(", ", r)}] must be [min, max] with 0 < min <= max.");
            if (options.Scales.Count != 1) throw new ArgumentException("Resize ratio_range needs exactly one scale.");
        }
        if (options.MultiscaleMode == MultiscaleMode.Range)
        {
            if (options.Scales.Count != 2)
                throw new ArgumentException($"Resize multiscale_mode range draws each edge between two scales and needs exactly two, got {options.Scales.Count}; " +
                    "several scales to pick one of: multiscale_mode value");
        }
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        var (a, b) = ChooseScale(random);
        int newW, newH;
        if (_options.KeepRatio)
        {
            // mmcv.imrescale: fit the long side into max(a, b) and the short side into min(a, b).
            double longEdge = Math.Max(a, b), shortEdge = Math.Min(a, b);
            double factor = Math.Min(longEdge / Math.Max(sample.Height, sample.Width), shortEdge / Math.Min(sample.Height, sample.Width));
            newW = (int)(sample.Width * factor + 0.5);
            newH = (int)(sample.Height * factor + 0.5);
        }
        else
        {
            newW = (int)a;
            newH = (int)b;
        }
        SampleGeometry.ResizeTo(sample, Math.Max(newH, 1), Math.Max(newW, 1), _options.Resampling);
    }

    private (double A, double B) ChooseScale(Random random)
    {
        if (_options.RatioRange is { } r)
        {
            double ratio = r[0] + random.NextDouble() * (r[1] - r[0]);
            var s = _options.Scales[0];
            return ((int)(s[0] * ratio), (int)(s[1] * ratio));
        }
        if (_options.MultiscaleMode == MultiscaleMode.Range)
        {
            // mmcv's RandomResize._random_sample: the first numbers bound the first edge, the second numbers the second.
            int[] low = _options.Scales[0], high = _options.Scales[1];
            int first = RandomDraws.Integer(random, Math.Min(low[0], high[0]), Math.Max(low[0], high[0]));
            int second = RandomDraws.Integer(random, Math.Min(low[1], high[1]), Math.Max(low[1], high[1]));
            return (first, second);
        }
        var chosen = _options.Scales.Count == 1 ? _options.Scales[0] : _options.Scales[random.Next(_options.Scales.Count)];
        return (chosen[0], chosen[1]);
    }
}
