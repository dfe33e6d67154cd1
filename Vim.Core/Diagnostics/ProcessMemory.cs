namespace Vim.Core.Diagnostics;

/// <summary>Resident memory of this process from /proc/self/status (native allocations included, unlike the GC's view).</summary>
public static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long ResidentBytes() => ReadStatusKb("VmRSS:") * 1024;

    /// <summary>High-water mark of the resident set in bytes (VmHWM).</summary>
    public static long PeakResidentBytes() => ReadStatusKb("VmHWM:") * 1024;

    private static long ReadStatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            var digits = line.AsSpan(field.Length).Trim();
            int space = digits.IndexOf(' ');
            return long.Parse(space >= 0 ? digits[..space] : digits);
        }
        throw new InvalidOperationException($"/proc/self/status has no {field} line");
    }
}
