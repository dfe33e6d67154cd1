namespace Vim.Data;

/// <summary>Elapsed and remaining times in the progress lines of long passes over a dataset.</summary>
internal static class Durations
{
    /// <summary>Minutes and seconds, e.g. 1:05.</summary>
    public static string Clock(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return $"{(int)t.TotalMinutes}:{t.Seconds:00}";
    }
}
