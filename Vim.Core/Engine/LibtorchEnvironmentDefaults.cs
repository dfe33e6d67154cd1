using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Vim.Core.Engine;

/// <summary>
/// Environment variables that libtorch's OpenMP and MKL read once, when libtorch is loaded, set as soon as this assembly
/// is loaded (before libtorch) unless the user set them: in the native environment (setenv; .NET's
/// Environment.SetEnvironmentVariable does not reach native code on Linux). No effect if libtorch was already loaded.
/// </summary>
internal static partial class LibtorchEnvironmentDefaults
{
#pragma warning disable CA2255 // a library initializer on purpose: it must run before libtorch loads
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Apply()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            // libgomp's default spins each idle worker for GOMP_SPINCOUNT = 300k pause instructions after every
            // parallel torch op; on recent Xeons (≈140-cycle pause) that is ~10-20 ms of a busy core per op. Our native
            // scan runs its own threads right after such ops, and on a 2-core machine the spinning threads took half the
            // CPU: measured in-process at L = 4097, forward+backward of the native scan went from ~200-300 ms to
            // ~50-70 ms with OMP_WAIT_POLICY=PASSIVE.
            SetEnv("OMP_WAIT_POLICY", "PASSIVE", overwrite: 0);
            // Under mpirun MKL's GEMMs chose between code paths from run to run (a rank's allocations interleave with
            // MPI's threads'): two 2-rank runs with dropout ended 1 ulp apart in 10 of 97 weights, and a resumed one
            // differed from the uninterrupted one. Its strict conditional-numerical-reproducibility mode makes them
            // bitwise repeatable, at no cost we could measure (Vim-Ti's forward at 512², see ARCHITECTURE). A single
            // process was repeatable without it.
            if (Distributed.Communicators.LaunchedByMpirun)
                SetEnv("MKL_CBWR", "AUTO,STRICT", overwrite: 0);
        }
        catch (DllNotFoundException)
        {
            // Not glibc: leave the defaults.
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
