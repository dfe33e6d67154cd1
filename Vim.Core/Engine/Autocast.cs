using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// Mixed precision through libtorch's own autocast (TorchSharp has no binding): matmuls and
/// convolutions inside the region run in the chosen half type, reductions and losses stay fp32,
/// gradients of fp32 parameters come back fp32. The state is thread-local, so the region must be
/// opened on the thread that runs the forward pass. Dispose closes it and clears the cast cache.
/// </summary>
public sealed partial class Autocast : IDisposable
{
    private const string Library = "torch_cpu";
    private readonly sbyte _device;
    private readonly bool _wasEnabled;

    [LibraryImport(Library, EntryPoint = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb")]
    private static partial void SetEnabled(sbyte device, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [LibraryImport(Library, EntryPoint = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE")]
    private static partial void SetDtype(sbyte device, sbyte dtype);

    [LibraryImport(Library, EntryPoint = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool IsEnabledNative(sbyte device);

    [LibraryImport(Library, EntryPoint = "_ZN2at8autocast11clear_cacheEv")]
    private static partial void ClearCache();

    [LibraryImport(Library, EntryPoint = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE")]
    private static partial sbyte GetDtype(sbyte device);

    [LibraryImport(Library, EntryPoint = "_ZN2at8autocast25is_autocast_cache_enabledEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool IsCacheEnabled();

    [LibraryImport(Library, EntryPoint = "_ZN2at8autocast26set_autocast_cache_enabledEb")]
    private static partial void SetCacheEnabled([MarshalAs(UnmanagedType.U1)] bool enabled);

    /// <param name="device">cpu or cuda (c10::DeviceType 0 / 1).</param>
    /// <param name="dtype">BFloat16 or Float16 (libtorch 2.10 autocasts to either on the CPU and on CUDA).</param>
    public Autocast(DeviceType device, ScalarType dtype)
    {
        if (dtype is not (ScalarType.BFloat16 or ScalarType.Float16))
            throw new VimException($"runtime.amp_dtype must be bf16 or fp16, got {dtype}");
        _device = device switch
        {
            DeviceType.CPU => 0,
            DeviceType.CUDA => 1,
            _ => throw new VimException($"autocast is not available for {device}"),
        };
        _wasEnabled = IsEnabledNative(_device);
        // TorchSharp's ScalarType numbering is c10's (BFloat16 = 15, Half = 5).
        SetDtype(_device, (sbyte)dtype);
        SetEnabled(_device, true);
    }

    /// <summary>True for the half types autocast computes in (bfloat16, float16).</summary>
    public static bool IsHalf(ScalarType dtype) => dtype is ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>
    /// <paramref name="t"/> in float32 when it is a half type, else itself: for the operations autocast
    /// output must not be computed in (box coordinates, ordering scores, the selective scan).
    /// </summary>
    public static Tensor WidenHalf(Tensor t) => IsHalf(t.dtype) ? t.to_type(ScalarType.Float32) : t;

    public static bool IsEnabled(DeviceType device) => IsEnabledNative(device == DeviceType.CUDA ? (sbyte)1 : (sbyte)0);

    /// <summary>This thread's autocast settings for the CPU and for CUDA (whether each is on, and in which half type).</summary>
    public readonly record struct Settings(bool Cpu, ScalarType CpuDtype, bool Cuda, ScalarType CudaDtype);

    /// <summary>The calling thread's settings now: what a recomputation elsewhere (another time, another thread) must reproduce.</summary>
    public static Settings Current() =>
        new(IsEnabledNative(0), (ScalarType)GetDtype(0), IsEnabledNative(1), (ScalarType)GetDtype(1));

    /// <summary>
    /// Puts <paramref name="settings"/> in force on the calling thread, with the cast cache off, until disposed (the previous
    /// settings and cache flag come back). For recomputing a forward pass: the cache may still hold casts a no-grad
    /// forward made of the same weights, which carry no autograd history, so reusing them would cut the weights off
    /// from their gradients; without it every cast is made afresh (the same values: a cast is exact and deterministic).
    /// </summary>
    public static IDisposable Reproduce(Settings settings) => new Reproduction(settings);

    private sealed class Reproduction : IDisposable
    {
        private readonly Settings _previous = Current();
        private readonly bool _cacheWasEnabled = IsCacheEnabled();

        public Reproduction(Settings settings)
        {
            SetCacheEnabled(false);
            Apply(settings);
        }

        public void Dispose()
        {
            Apply(_previous);
            SetCacheEnabled(_cacheWasEnabled);
        }

        private static void Apply(Settings settings)
        {
            SetDtype(0, (sbyte)settings.CpuDtype);
            SetEnabled(0, settings.Cpu);
            SetDtype(1, (sbyte)settings.CudaDtype);
            SetEnabled(1, settings.Cuda);
        }
    }

    public void Dispose()
    {
        SetEnabled(_device, _wasEnabled);
        if (!_wasEnabled) ClearCache();
    }
}
