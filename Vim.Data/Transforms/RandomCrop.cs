using Vim.Core.Config;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// Random crop as in mmseg and mmdet: the window's size by <see cref="RandomCropOptions.CropType"/> (mmdet's draws), then its
/// offset. With <c>cat_max_ratio</c> &lt; 1 the window is redrawn up to 10 times until at least two classes are present and
/// none covers cat_max_ratio or more of the non-ignored pixels; if every try fails, the last draw is used (exactly mmseg's
/// behaviour). Objects are cut with the image (<see cref="SampleGeometry.CropTo"/>; their boxes clipped by bbox_clip_border
/// and recomputed from their masks by recompute_bbox, as mmdet's); a detection sample the crop leaves without objects is
/// given up (<see cref="SampleRejectedException"/>) unless allow_negative_crop is set, as mmdet's returns None, one that
/// had none before the crop included (mmdet's test is that no box is left, not that boxes were lost).
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
        bool range = options.CropType == CropType.AbsoluteRange, relative = options.CropType is CropType.Relative or CropType.RelativeRange;
        var type = ConfigBinder.KeyOf(options.CropType);
        if (range && (options.SizeRange is not [var min, var max] || min <= 0 || max < min))
            throw new ArgumentException($"RandomCrop crop_type {type} needs size_range: [min, max] pixels with 0 < min <= max" +
                (options.SizeRange is { } given ? $", got [{string.Join(", ", given)}]." : "."));
        if (!range && options.SizeRange is not null)
            throw new ArgumentException($"RandomCrop size_range is read by crop_type absolute_range only, and crop_type is {type}.");
        if (relative && options.RelativeSize is not [> 0 and <= 1, > 0 and <= 1])
            throw new ArgumentException($"RandomCrop crop_type {type} needs relative_size: [height, width] fractions of the image in (0, 1]" +
                (options.RelativeSize is { } given ? $", got [{string.Join(", ", given)}]." : "."));
        if (!relative && options.RelativeSize is not null)
            throw new ArgumentException($"RandomCrop relative_size is read by crop_type relative and relative_range only, and crop_type is {type}.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        var (cropH, cropW) = CropSize(sample.Height, sample.Width, random);
        var (y0, x0) = Draw(sample, cropH, cropW, random);
        if (_options.CatMaxRatio < 1 && sample.LabelMap is not null)
        {
            for (int attempt = 0; attempt < MaxRetries; attempt++)
            {
                if (Balanced(sample.LabelMap, sample.Width, y0, x0, cropH, cropW)) break;
                (y0, x0) = Draw(sample, cropH, cropW, random);
            }
        }
        int objects = sample.InstanceCount;
        SampleGeometry.CropTo(sample, y0, x0, cropH, cropW, _options.RecomputeBbox, _options.BboxClipBorder);
        if (sample.InstanceCount == 0 && sample.LabelMap is null && !_options.AllowNegativeCrop)
            throw new SampleRejectedException($"{sample.FilePath}: random_crop's {cropW}x{cropH} window at x={x0} y={y0} leaves " +
                (objects > 0 ? $"none of its {objects} object(s)" : "no object (the sample had none)") + " (allow_negative_crop: false)");
    }

    /// <summary>mmdet's _get_crop_size: the window's (height, width) for an image of <paramref name="height"/> × <paramref name="width"/>.</summary>
    private (int Height, int Width) CropSize(int height, int width, Random random)
    {
        switch (_options.CropType)
        {
            case CropType.AbsoluteRange:
                int[] range = _options.SizeRange!;
                int cropH = RandomDraws.Integer(random, Math.Min(height, range[0]), Math.Min(height, range[1]));
                int cropW = RandomDraws.Integer(random, Math.Min(width, range[0]), Math.Min(width, range[1]));
                return (cropH, cropW);
            case CropType.Relative:
                return (Fraction(height, _options.RelativeSize![0]), Fraction(width, _options.RelativeSize[1]));
            case CropType.RelativeRange:
                // mmdet holds the fractions as float32 and draws numpy's rand(2), height's first.
                double lowH = (float)_options.RelativeSize![0], lowW = (float)_options.RelativeSize[1];
                double fractionH = lowH + random.NextDouble() * (1 - lowH);
                double fractionW = lowW + random.NextDouble() * (1 - lowW);
                return (Fraction(height, fractionH), Fraction(width, fractionW));
            default:
                return (Math.Min(_options.Height, height), Math.Min(_options.Width, width));
        }
    }

    /// <summary>int(side × fraction + 0.5), at least one pixel.</summary>
    private static int Fraction(int side, double fraction) => Math.Max(1, (int)(side * fraction + 0.5));

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
