using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Vim.Core.Ssm;

/// <summary>
/// Makes libtorch's OpenMP threads sleep instead of spin between parallel regions, unless the
/// user chose a policy (OMP_WAIT_POLICY set).
/// </summary>
/// <remarks>
/// libgomp's default spins each idle worker for GOMP_SPINCOUNT = 300k pause instructions after every
/// parallel torch op; on recent Xeons (≈140-cycle pause) that is ~10-20 ms of a busy core per op.
/// Our native scan runs its own threads right after such ops, and on a 2-core machine the spinning
/// threads took half the CPU: measured in-process at L = 4097, forward+backward of the native scan
/// went from ~200-300 ms to ~50-70 ms with OMP_WAIT_POLICY=PASSIVE. libgomp reads the variable
/// once, when libtorch is loaded, so it is set in the native environment (setenv; .NET's
/// Environment.SetEnvironmentVariable does not reach native code on Linux) as soon as this
/// assembly is loaded; it has no effect if libtorch was already loaded.
/// </remarks>
internal static partial class OpenMpWaitPolicy
{
#pragma warning disable CA2255 // a library initializer on purpose: it must run before libtorch loads
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void PreferPassive()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            SetEnv("OMP_WAIT_POLICY", "PASSIVE", overwrite: 0);
        }
        catch (DllNotFoundException)
        {
            // Not glibc: leave the default.
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
