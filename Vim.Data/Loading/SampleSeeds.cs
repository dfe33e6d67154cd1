namespace Vim.Data.Loading;

/// <summary>Derives independent 32-bit seeds from (seed, epoch, index) with a SplitMix64 finaliser.</summary>
internal static class SampleSeeds
{
    public static int Mix(int seed, int epoch, int index)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL;
        z = Scramble(z ^ (ulong)(uint)epoch);
        z = Scramble(z ^ ((ulong)(uint)index << 1));
        return (int)(z ^ (z >> 32));
    }

    private static ulong Scramble(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
