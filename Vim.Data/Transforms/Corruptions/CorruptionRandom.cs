namespace Vim.Data.Transforms.Corruptions;

/// <summary>
/// The random draws of one corrupted image, from a seed alone (the image's index in its split), so that a benchmark
/// run is reproducible cell by cell and process by process. System.Random with a seed is a fixed algorithm
/// (the seeded generator .NET keeps for compatibility), so the same seed gives the same pixels on every machine.
/// The package draws from numpy's global generator instead: the same distributions, other numbers.
/// </summary>
public sealed class CorruptionRandom(int seed)
{
    private readonly Random _random = new(seed);
    private double _spareNormal;
    private bool _hasSpare;

    /// <summary>Uniform in [0, 1).</summary>
    public double Uniform() => _random.NextDouble();

    /// <summary>Uniform in [<paramref name="low"/>, <paramref name="high"/>), numpy's uniform(low, high).</summary>
    public double Uniform(double low, double high) => RandomDraws.Uniform(_random, low, high);

    /// <summary>An integer in [<paramref name="low"/>, <paramref name="high"/>), numpy's randint (the high end excluded).</summary>
    public int Integer(int low, int high) => _random.Next(low, high);

    /// <summary>A standard normal draw (Box–Muller; the second value of each pair is kept for the next call).</summary>
    public double Normal()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spareNormal;
        }
        // 1 − U lies in (0, 1]: its logarithm is finite.
        double radius = Math.Sqrt(-2.0 * Math.Log(1.0 - _random.NextDouble()));
        double angle = 2.0 * Math.PI * _random.NextDouble();
        _spareNormal = radius * Math.Sin(angle);
        _hasSpare = true;
        return radius * Math.Cos(angle);
    }

    /// <summary>numpy's normal(loc, scale, size=count) as float32.</summary>
    public float[] Normals(int count, double mean, double std)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(mean + std * Normal());
        return values;
    }
}
