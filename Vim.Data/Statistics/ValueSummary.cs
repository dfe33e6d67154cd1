using MathNet.Numerics.Statistics;

namespace Vim.Data.Statistics;

/// <summary>
/// Smallest, median, mean and largest of a set of numbers; all NaN (null in JSON) for an empty set. The median of an
/// even count is the mean of the two middle values, as numpy.median.
/// </summary>
public sealed record ValueSummary(int Count, double Min, double Median, double Mean, double Max)
{
    public static ValueSummary Of(IEnumerable<double> values)
    {
        var all = values.ToArray();
        if (all.Length == 0) return new ValueSummary(0, double.NaN, double.NaN, double.NaN, double.NaN);
        return new ValueSummary(all.Length, all.Min(), all.Median(), all.Average(), all.Max());
    }
}

/// <summary>How many images have one size; sizes are listed most frequent first.</summary>
public sealed record ImageSizeCount(int Width, int Height, int Images)
{
    /// <summary>Distinct sizes, most frequent first, ties by width then height (so the order does not depend on the input's).</summary>
    public static IReadOnlyList<ImageSizeCount> Tally(IEnumerable<(int Width, int Height)> sizes) =>
        sizes.GroupBy(s => s)
            .Select(g => new ImageSizeCount(g.Key.Width, g.Key.Height, g.Count()))
            .OrderByDescending(s => s.Images).ThenBy(s => s.Width).ThenBy(s => s.Height)
            .ToArray();
}
