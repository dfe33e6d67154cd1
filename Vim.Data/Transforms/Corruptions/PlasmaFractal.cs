namespace Vim.Data.Transforms.Corruptions;

/// <summary>
/// The diamond-square height map of imagecorruptions' <c>plasma_fractal</c> (fog's haze; our frost texture's frozen
/// haze): a square of side <c>mapSize</c> (a power of two) that wraps around at its edges, each finer level the mean of
/// its four neighbours plus uniform noise whose amplitude starts at 100·[−100, 100) and is divided by
/// <c>decay</c> per level, rescaled to [0, 1].
/// </summary>
internal static class PlasmaFractal
{
    public static double[] Generate(int mapSize, double decay, CorruptionRandom random)
    {
        if (mapSize < 1 || (mapSize & (mapSize - 1)) != 0) throw new ArgumentException($"plasma fractal: the size must be a power of two, got {mapSize}", nameof(mapSize));
        var map = new double[mapSize * mapSize];
        double wibble = 100;
        int n = mapSize;
        double At(int y, int x) => map[(((y % n) + n) % n) * n + ((x % n) + n) % n];
        double Wibbled(double sum) => sum / 4 + wibble * random.Uniform(-wibble, wibble);
        for (int step = mapSize; step >= 2; step /= 2, wibble /= decay)
        {
            int half = step / 2;
            // Squares: each square's centre from its four corners.
            for (int y = 0; y < n; y += step)
                for (int x = 0; x < n; x += step)
                    map[(y + half) * n + x + half] = Wibbled(At(y, x) + At(y + step, x) + At(y, x + step) + At(y + step, x + step));
            // Diamonds: the midpoints of the squares' top edges, then of their left edges, each from the two corners of
            // its edge and the two square centres beside it (wrapping around).
            for (int y = 0; y < n; y += step)
                for (int x = 0; x < n; x += step)
                    map[y * n + x + half] = Wibbled(At(y + half, x + half) + At(y - half, x + half) + At(y, x) + At(y, x + step));
            for (int y = 0; y < n; y += step)
                for (int x = 0; x < n; x += step)
                    map[(y + half) * n + x] = Wibbled(At(y + half, x + half) + At(y + half, x - half) + At(y, x) + At(y + step, x));
        }
        double min = map.Min();
        for (int i = 0; i < map.Length; i++) map[i] -= min;
        double max = map.Max();
        if (max > 0) for (int i = 0; i < map.Length; i++) map[i] /= max;
        return map;
    }

    /// <summary>The smallest power of two at least <paramref name="size"/> (numpy's next_power_of_2 in the package).</summary>
    public static int NextPowerOfTwo(int size) => size <= 1 ? 1 : 1 << (32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(size - 1)));
}
