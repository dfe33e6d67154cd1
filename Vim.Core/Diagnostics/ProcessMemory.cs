using System.Runtime.InteropServices;

namespace Vim.Core.Diagnostics;

/// <summary>Resident memory of this process from /proc/self/status (native allocations included, unlike the GC's view).</summary>
public static partial class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long ResidentBytes() => ReadStatusKb("VmRSS:") * 1024;

    /// <summary>High-water mark of the resident set in bytes (VmHWM).</summary>
    public static long PeakResidentBytes() => ReadStatusKb("VmHWM:") * 1024;

    /// <summary>
    /// Bytes malloc has handed out and not yet taken back, over all arenas (glibc's mallinfo2: heap blocks in use plus
    /// mmapped blocks). libtorch's CPU tensors live there, so the difference across a piece of code is the native
    /// memory it left allocated, exactly, whatever the allocator keeps cached or the kernel has made resident.
    /// </summary>
    public static long MallocBytesInUse()
    {
        var info = MallInfo2();
        return (long)(info.InUseBytes + info.MmappedBytes);
    }

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

    /// <summary>glibc's struct mallinfo2 (glibc ≥ 2.33), field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct MallocInfo
    {
        public readonly nuint Arena, FreeChunks, FastBinBlocks, MmappedRegions, MmappedBytes, MaxTotalAllocated, FastBinBytes, InUseBytes, FreeBytes, TopReleasable;
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallinfo2")]
    private static partial MallocInfo MallInfo2();
}
