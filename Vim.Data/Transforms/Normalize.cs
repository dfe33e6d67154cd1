using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>(pixel − mean) / std per RGB channel into a CHW float array (<see cref="DataSample.NormalizedImage"/>).</summary>
public sealed class Normalize : ISampleTransform
{
    private readonly float[] _mean;
    private readonly float[] _invStd;

    public Normalize(NormalizeOptions options)
    {
        if (options.Mean.Length != 3 || options.Std.Length != 3) throw new ArgumentException("Normalize mean and std need 3 values (RGB).");
        if (options.Std.Any(s => s <= 0)) throw new ArgumentException("Normalize std values must be positive.");
        _mean = options.Mean.Select(m => (float)m).ToArray();
        _invStd = options.Std.Select(s => (float)(1 / s)).ToArray();
    }

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "Normalize");
        int plane = sample.Height * sample.Width;
        var img = sample.Image;
        var chw = new float[3 * plane];
        for (int p = 0; p < plane; p++)
        {
            int src = 3 * p;
            chw[p] = (img[src] - _mean[0]) * _invStd[0];
            chw[plane + p] = (img[src + 1] - _mean[1]) * _invStd[1];
            chw[2 * plane + p] = (img[src + 2] - _mean[2]) * _invStd[2];
        }
        sample.NormalizedImage = chw;
    }
}
