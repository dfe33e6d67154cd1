using System.Runtime.InteropServices;

namespace Vim.Core.Diagnostics;

/// <summary>CPU time and page faults of this process, all threads (getrusage, RUSAGE_SELF).</summary>
public static partial class ResourceUsage
{
    /// <summary>User + system CPU time of the process so far, in microseconds (0 where getrusage is
    /// unavailable), less the time the native scan pool's keep-awake threads spent spinning (see
    /// <see cref="Ssm.SelectiveScan.NativeKeepAwake"/>): that time did no work.</summary>
    public static long ProcessCpuMicroseconds() => GetRUsageCpuMicroseconds() - Ssm.SelectiveScanKernels.KeepAwakeCpuMicroseconds();

    /// <summary>User + system CPU time of the process so far as getrusage reports it, in microseconds,
    /// the keep-awake threads' spinning included (0 where getrusage is unavailable).</summary>
    public static long GetRUsageCpuMicroseconds()
    {
        if (!TryRead(out var usage)) return 0;
        return usage.UserSeconds * 1_000_000 + usage.UserMicroseconds + usage.SystemSeconds * 1_000_000 + usage.SystemMicroseconds;
    }

    /// <summary>Minor page faults of the process so far: first touches of freshly mapped memory, among others.</summary>
    public static long MinorPageFaults() => TryRead(out var usage) ? usage.MinFlt : 0;

    private static bool TryRead(out RUsage usage)
    {
        usage = new RUsage();
        return OperatingSystem.IsLinux() && GetRUsage(0, ref usage) == 0;
    }

    // struct rusage on 64-bit Linux: two timevals (long seconds, long microseconds), then 14 longs.
    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSeconds, UserMicroseconds, SystemSeconds, SystemMicroseconds;
        public long MaxRss, Ixrss, Idrss, Isrss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NVCsw, NIvCsw;
    }

    [LibraryImport("libc.so.6", EntryPoint = "getrusage")]
    private static partial int GetRUsage(int who, ref RUsage usage);
}
