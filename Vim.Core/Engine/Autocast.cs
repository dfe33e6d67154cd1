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

    public void Dispose()
    {
        SetEnabled(_device, _wasEnabled);
        if (!_wasEnabled) ClearCache();
    }
}
