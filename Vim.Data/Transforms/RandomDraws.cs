namespace Vim.Data.Transforms;

/// <summary>The random draws the augmentations share, each as the numpy call mmdet/mmseg make, so seeded runs agree draw for draw.</summary>
internal static class RandomDraws
{
    /// <summary>numpy's random.uniform(low, high): one draw from <paramref name="random"/>.</summary>
    public static double Uniform(Random random, double low, double high) => low + (high - low) * random.NextDouble();

    /// <summary>numpy's random.randint(low, high + 1): an integer in [<paramref name="low"/>, <paramref name="high"/>], both ends included.</summary>
    public static int Integer(Random random, int low, int high) => random.Next(low, high + 1);
}
