using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>Mirrors image, masks and label map left–right; boxes map x → width − x.</summary>
public sealed class RandomFlip : ISampleTransform
{
    private readonly RandomFlipOptions _options;

    public RandomFlip(RandomFlipOptions options)
    {
        if (options.Prob is < 0 or > 1) throw new ArgumentException($"RandomFlip prob {options.Prob} must be in [0, 1].");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        if (random.NextDouble() < _options.Prob) SampleGeometry.FlipHorizontal(sample);
    }
}
