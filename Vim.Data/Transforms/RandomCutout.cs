using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// mmseg's RandomCutOut. Draws in mmseg's order: the coin, the hole count, then per hole its left x in [0, width), top y in
/// [0, height) and candidate index; a hole is cut where it meets the image (x1 = min(x + w, width), likewise y). A ratio
/// candidate's size is ⌊ratio · image size⌋, as mmseg's int().
/// </summary>
public sealed class RandomCutout : ISampleTransform
{
    private readonly RandomCutoutOptions _options;
    private readonly double _prob;
    private readonly int _minHoles, _maxHoles;
    private readonly byte[] _fill;

    public RandomCutout(RandomCutoutOptions options)
    {
        _prob = StepOptions.RequiredProbability(options.Prob, "random_cutout", "cutting holes");
        switch (options.NHoles)
        {
            case null or []:
                throw new ArgumentException("random_cutout needs n_holes: a count, or [min, max].");
            case [var n]:
                if (n < 1) throw new ArgumentException($"random_cutout n_holes {n} must be at least 1.");
                (_minHoles, _maxHoles) = (n, n);
                break;
            case [var lo, var hi]:
                if (lo < 0 || hi <= lo) throw new ArgumentException($"random_cutout n_holes [{lo}, {hi}] must be [min, max] with 0 <= min < max (one number for a fixed count).");
                (_minHoles, _maxHoles) = (lo, hi);
                break;
            default:
                throw new ArgumentException($"random_cutout n_holes [{string.Join(", ", options.NHoles)}] must be a count or [min, max].");
        }
        if ((options.CutoutShape is null) == (options.CutoutRatio is null))
            throw new ArgumentException("random_cutout needs exactly one of cutout_shape ([[width, height], ...] in pixels) and cutout_ratio ([[width ratio, height ratio], ...]).");
        if (options.CutoutShape is { } shapes)
        {
            if (shapes.Count == 0) throw new ArgumentException("random_cutout cutout_shape needs at least one [width, height].");
            foreach (var shape in shapes)
                if (shape.Length != 2 || shape[0] < 1 || shape[1] < 1)
                    throw new ArgumentException($"random_cutout cutout_shape [{string.Join(", ", shape)}] must be [width, height], positive pixels.");
        }
        if (options.CutoutRatio is { } ratios)
        {
            if (ratios.Count == 0) throw new ArgumentException("random_cutout cutout_ratio needs at least one [width ratio, height ratio].");
            foreach (var ratio in ratios)
                if (ratio.Length != 2 || !ratio.All(r => r is > 0 and <= 1))
                    throw new ArgumentException($"random_cutout cutout_ratio [{string.Join(", ", ratio)}] must be [width ratio, height ratio], each in (0, 1].");
        }
        _fill = options.FillIn switch
        {
            [var v] when v is >= 0 and <= 255 => [(byte)v, (byte)v, (byte)v],
            [var r, var g, var b] when new[] { r, g, b }.All(v => v is >= 0 and <= 255) => [(byte)r, (byte)g, (byte)b],
            _ => throw new ArgumentException($"random_cutout fill_in [{string.Join(", ", options.FillIn)}] must be [r, g, b] (or one value), each 0..255."),
        };
        if (options.SegFillIn is < 0 or > ushort.MaxValue)
            throw new ArgumentException($"random_cutout seg_fill_in {options.SegFillIn} must be a label 0..{ushort.MaxValue} (or null to leave labels alone).");
        _options = options;
    }

    private int CandidateCount => _options.CutoutShape?.Count ?? _options.CutoutRatio!.Count;

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "RandomCutout");
        if (!(random.NextDouble() < _prob)) return;
        int h = sample.Height, w = sample.Width;
        int holes = random.Next(_minHoles, _maxHoles + 1);
        for (int hole = 0; hole < holes; hole++)
        {
            int x0 = random.Next(w), y0 = random.Next(h), candidate = random.Next(CandidateCount);
            var (holeW, holeH) = _options.CutoutShape is { } shapes
                ? (shapes[candidate][0], shapes[candidate][1])
                : ((int)(_options.CutoutRatio![candidate][0] * w), (int)(_options.CutoutRatio[candidate][1] * h));
            int x1 = Math.Min(x0 + holeW, w), y1 = Math.Min(y0 + holeH, h);
            for (int y = y0; y < y1; y++)
            {
                var row = sample.Image.AsSpan((y * w + x0) * 3, (x1 - x0) * 3);
                for (int p = 0; p < row.Length; p += 3) _fill.CopyTo(row[p..]);
                if (_options.SegFillIn is { } label && sample.LabelMap is { } labels)
                    labels.AsSpan(y * w + x0, x1 - x0).Fill((ushort)label);
            }
        }
    }
}
