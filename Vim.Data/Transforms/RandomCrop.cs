using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// Random crop as in mmseg: with <c>cat_max_ratio</c> &lt; 1 the window is redrawn up to 10 times until at
/// least two classes are present and none covers cat_max_ratio or more of the non-ignored pixels; if
/// every try fails, the last draw is used (exactly mmseg's behaviour).
/// </summary>
public sealed class RandomCrop : ISampleTransform
{
    public const int MaxRetries = 10;

    private readonly RandomCropOptions _options;

    public RandomCrop(RandomCropOptions options)
    {
        if (options.Height <= 0 || options.Width <= 0) throw new ArgumentException($"RandomCrop size {options.Width}x{options.Height} must be positive.");
        if (options.IgnoreIndex is < 0 or > ushort.MaxValue) throw new ArgumentException($"RandomCrop ignore_index {options.IgnoreIndex} must be 0..{ushort.MaxValue}.");
        if (options.CatMaxRatio <= 0 || options.CatMaxRatio > 1) throw new ArgumentException($"RandomCrop cat_max_ratio {options.CatMaxRatio} must be in (0, 1].");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        int cropH = Math.Min(_options.Height, sample.Height), cropW = Math.Min(_options.Width, sample.Width);
        var (y0, x0) = Draw(sample, cropH, cropW, random);
        if (_options.CatMaxRatio < 1 && sample.LabelMap is not null)
        {
            for (int attempt = 0; attempt < MaxRetries; attempt++)
            {
                if (Balanced(sample.LabelMap, sample.Width, y0, x0, cropH, cropW)) break;
                (y0, x0) = Draw(sample, cropH, cropW, random);
            }
        }
        SampleGeometry.CropTo(sample, y0, x0, cropH, cropW);
    }

    private static (int Y0, int X0) Draw(DataSample s, int cropH, int cropW, Random random) =>
        (random.Next(s.Height - cropH + 1), random.Next(s.Width - cropW + 1));

    /// <summary>Per-thread class histogram over every 16-bit label value (workers run transforms in parallel).</summary>
    [ThreadStatic]
    private static int[]? t_counts;

    private bool Balanced(ushort[] labels, int width, int y0, int x0, int cropH, int cropW)
    {
        var counts = t_counts ??= new int[ushort.MaxValue + 1];
        Array.Clear(counts);
        for (int y = y0; y < y0 + cropH; y++)
        {
            var row = labels.AsSpan((y * width) + x0, cropW);
            foreach (var v in row) counts[v]++;
        }
        counts[_options.IgnoreIndex] = 0;
        int classes = 0, max = 0, total = 0;
        foreach (var c in counts)
        {
            if (c == 0) continue;
            classes++;
            total += c;
            max = Math.Max(max, c);
        }
        return classes > 1 && (double)max / total < _options.CatMaxRatio;
    }
}
