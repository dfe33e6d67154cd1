using System.Runtime.InteropServices;

namespace Vim.Core.Native;

/// <summary>Entry points of libvimdense_native.so that describe the library itself.</summary>
public static partial class NativeLibraryInfo
{
    /// <summary>The ABI version this managed code was written against (native/include/vimdense/native.h).</summary>
    public const int ExpectedAbiVersion = 2;

    [LibraryImport("vimdense_native", EntryPoint = "vimdense_abi_version")]
    private static partial int AbiVersionNative();

    [LibraryImport("vimdense_native", EntryPoint = "vimdense_has_cuda")]
    private static partial int HasCudaNative();

    /// <summary>True when the native library was compiled with its CUDA kernels.</summary>
    public static bool HasCuda => HasCudaNative() != 0;

    private static readonly Lazy<bool> Checked = new(() =>
    {
        EnsureCompatible();
        return true;
    });

    /// <summary><see cref="EnsureCompatible"/> once per process, before the first call into a kernel (a failure is
    /// rethrown on every later call).</summary>
    public static void EnsureLoaded() => _ = Checked.Value;

    /// <summary>Whether <see cref="EnsureLoaded"/> has loaded the library (reading a counter must not load it).</summary>
    public static bool IsLoaded => Checked.IsValueCreated;

    /// <summary>Throws when the native library on disk was built from other sources than this assembly.</summary>
    public static void EnsureCompatible()
    {
        int actual;
        try
        {
            actual = AbiVersionNative();
        }
        catch (DllNotFoundException e)
        {
            throw new InvalidOperationException(
                "libvimdense_native.so was not found beside the program; build with `dotnet build` (it runs CMake on native/) or run ./vim once.", e);
        }
        if (actual != ExpectedAbiVersion)
            throw new InvalidOperationException(
                $"libvimdense_native.so has ABI version {actual}, expected {ExpectedAbiVersion}: the native build is stale; rebuild with ./vim or dotnet build.");
    }
}
