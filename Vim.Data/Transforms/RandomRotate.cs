using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// mmseg's RandomRotate: a coin with probability prob and an angle uniform in the degree range, both drawn for every sample
/// (mmseg's order), then <see cref="SampleGeometry.Rotate"/>, which also moves boxes and masks as mmdet's Rotate does.
/// </summary>
public sealed class RandomRotate : ISampleTransform
{
    private readonly RandomRotateOptions _options;
    private readonly double _prob, _minDegree, _maxDegree;

    public RandomRotate(RandomRotateOptions options)
    {
        _prob = StepOptions.RequiredProbability(options.Prob, "random_rotate", "rotating");
        switch (options.Degree)
        {
            case null or []:
                throw new ArgumentException("random_rotate needs degree: a positive number d for angles in [-d, d], or [min, max].");
            case [var d]:
                if (!(d > 0) || double.IsInfinity(d)) throw new ArgumentException($"random_rotate degree {d} must be a positive number of degrees (or [min, max]).");
                (_minDegree, _maxDegree) = (-d, d);
                break;
            case [var a, var b]:
                if (!double.IsFinite(a) || !double.IsFinite(b)) throw new ArgumentException($"random_rotate degree [{a}, {b}] must be finite.");
                (_minDegree, _maxDegree) = (Math.Min(a, b), Math.Max(a, b));
                break;
            default:
                throw new ArgumentException($"random_rotate degree [{string.Join(", ", options.Degree)}] must be one number d (for [-d, d]) or [min, max].");
        }
        if (options.PadVal is < 0 or > 255) throw new ArgumentException($"random_rotate pad_val {options.PadVal} must be 0..255.");
        if (options.SegPadVal is < 0 or > ushort.MaxValue) throw new ArgumentException($"random_rotate seg_pad_val {options.SegPadVal} must be 0..{ushort.MaxValue}.");
        if (options.Center is { } center && (center.Length != 2 || !center.All(double.IsFinite)))
            throw new ArgumentException($"random_rotate center [{string.Join(", ", center)}] must be [x, y] in pixels.");
        if (options.Center is not null && options.AutoBound)
            throw new ArgumentException("random_rotate auto_bound rotates about the image's middle; it cannot be combined with center.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "RandomRotate");
        bool rotate = random.NextDouble() < _prob;
        double degrees = _minDegree + random.NextDouble() * (_maxDegree - _minDegree);
        if (rotate) SampleGeometry.Rotate(sample, degrees, _options.Center, _options.AutoBound, _options.PadVal, _options.SegPadVal);
    }
}
