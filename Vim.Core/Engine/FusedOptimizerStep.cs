using System.Runtime.InteropServices;
using TorchSharp;
using Vim.Core.Native;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// The native one-pass AdamW and SGD updates (native/include/vimdense/optimizer_ops.h) for the parameters whose tensors
/// are all contiguous float32 in host memory; the optimisers keep their TorchSharp arithmetic for the others (CUDA,
/// half precision, non-contiguous gradients). The TorchSharp path takes six to eight tensor operations per parameter,
/// each a pass over memory and a few microseconds of dispatch: for the few hundred tensors of a Vim-Ti detector that
/// was a measurable part of a CPU iteration, where one call now updates them all.
/// Results are bit-identical to the TorchSharp path on libtorch's CPU kernels (the same ops in the same order, each
/// rounded as libtorch's kernel rounds it; native/src/optimizer_cpu.cpp), so switching paths changes no number; the
/// state tensors are the same, so checkpoints and resume are unaffected.
/// </summary>
public static partial class FusedOptimizerStep
{
    /// <summary>
    /// Whether the optimisers use the native step where they can: on unless the environment sets
    /// VIMDENSE_FUSED_OPTIMIZER=0. `vim bench train` switches it to time both paths in one process.
    /// </summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("VIMDENSE_FUSED_OPTIMIZER") != "0";

    /// <summary>
    /// Whether the kernel's rounding is libtorch's here. libtorch fuses add(alpha) and addcmul through an fma only in its
    /// AVX2/AVX-512 kernels; its portable ones (a CPU without AVX2 and FMA, or ATEN_CPU_CAPABILITY=default, compared
    /// exactly as ATen compares it) round each product apart, which the kernel does not reproduce, so there every tensor
    /// keeps the TorchSharp ops and the path still changes no number.
    /// </summary>
    internal static bool RoundsAsLibtorch(string? atenCapability, bool cpuHasAvx2AndFma) =>
        cpuHasAvx2AndFma && atenCapability != "default";

    private static readonly bool RoundsAsLibtorchHere = RoundsAsLibtorch(Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY"),
        System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported);

    /// <summary>Whether the optimisers gather a <see cref="Batch"/> this step: <see cref="Enabled"/>, where the kernel
    /// rounds as libtorch.</summary>
    public static bool InUse => Enabled && RoundsAsLibtorchHere;

    /// <summary>True when every tensor can go to the native kernel: contiguous float32 on the CPU.</summary>
    public static bool Accepts(params Tensor[] tensors)
    {
        foreach (var t in tensors)
            if (t.device_type != DeviceType.CPU || t.dtype != ScalarType.Float32 || !t.is_contiguous())
                return false;
        return true;
    }

    /// <summary>
    /// The tensors of one step, gathered as the optimiser walks its groups and updated by one native call. Only data
    /// pointers are kept: the parameters, their gradients and the optimiser's state own the memory until the call.
    /// </summary>
    public sealed class Batch
    {
        private readonly List<IntPtr> _params = new(), _grads = new(), _first = new(), _second = new();
        private readonly List<long> _numels = new();
        // Per tensor: AdamW's decay factor, step size and sqrt(1 - beta2^t); SGD's lr and weight decay.
        private readonly List<double> _scalarA = new(), _scalarB = new(), _scalarC = new();

        public int Count => _params.Count;

        /// <summary>Adds one AdamW parameter when <see cref="Accepts"/> takes all its tensors; false leaves it to the
        /// caller's TorchSharp ops.</summary>
        public bool TryAddAdamW(Tensor parameter, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWStepScalars scalars)
        {
            if (!Accepts(parameter, grad, expAvg, expAvgSq)) return false;
            Add(parameter, grad, expAvg, expAvgSq, scalars.Decay, scalars.StepSize, scalars.Bias2Sqrt);
            return true;
        }

        /// <summary>Adds one SGD parameter when <see cref="Accepts"/> takes all its tensors; <paramref name="momentumBuffer"/>
        /// is null without momentum. False leaves it to the caller's TorchSharp ops.</summary>
        public bool TryAddSgd(Tensor parameter, Tensor grad, Tensor? momentumBuffer, double lr, double weightDecay)
        {
            if (!Accepts(parameter, grad) || (momentumBuffer is not null && !Accepts(momentumBuffer))) return false;
            Add(parameter, grad, momentumBuffer, null, lr, weightDecay, 0);
            return true;
        }

        private void Add(Tensor parameter, Tensor grad, Tensor? first, Tensor? second, double a, double b, double c)
        {
            _params.Add(TensorMemory.Of(parameter));
            _grads.Add(TensorMemory.Of(grad));
            _first.Add(first is null ? IntPtr.Zero : TensorMemory.Of(first));
            _second.Add(second is null ? IntPtr.Zero : TensorMemory.Of(second));
            _numels.Add(parameter.numel());
            _scalarA.Add(a);
            _scalarB.Add(b);
            _scalarC.Add(c);
        }

        /// <summary>torch.optim.AdamW's update of every parameter added by <see cref="TryAddAdamW"/>.</summary>
        public void AdamW(double beta1, double beta2, double eps)
        {
            if (Count == 0) return;
            NativeLibraryInfo.EnsureLoaded();
            Check(AdamWStepCpuF32(Count, _params.ToArray(), _grads.ToArray(), _first.ToArray(), _second.ToArray(),
                CollectionsMarshal.AsSpan(_numels), CollectionsMarshal.AsSpan(_scalarA), CollectionsMarshal.AsSpan(_scalarB),
                CollectionsMarshal.AsSpan(_scalarC), beta1, beta2, eps), "AdamW");
        }

        /// <summary>torch.optim.SGD's update of every parameter added by <see cref="TryAddSgd"/>; <paramref name="firstStep"/>
        /// initialises the momentum buffers with the first step's direction, as torch does.</summary>
        public void Sgd(double momentum, bool firstStep)
        {
            if (Count == 0) return;
            NativeLibraryInfo.EnsureLoaded();
            Check(SgdStepCpuF32(Count, _params.ToArray(), _grads.ToArray(), momentum != 0 ? _first.ToArray() : null,
                CollectionsMarshal.AsSpan(_numels), CollectionsMarshal.AsSpan(_scalarA), CollectionsMarshal.AsSpan(_scalarB),
                momentum, firstStep ? 1 : 0), "SGD");
        }
    }

    private static void Check(int code, string optimizer)
    {
        if (code != 0)
            throw new InvalidOperationException(
                $"{optimizer}: the native fused step failed with code {code}: {Marshal.PtrToStringAnsi(ErrorStringNative(code)) ?? "unknown"}.");
    }

    [LibraryImport("vimdense_native", EntryPoint = "vimdense_opt_error_string")]
    private static partial IntPtr ErrorStringNative(int code);

    [LibraryImport("vimdense_native", EntryPoint = "vimdense_adamw_step_cpu_f32")]
    private static partial int AdamWStepCpuF32(long count, IntPtr[] parameters, IntPtr[] grads, IntPtr[] expAvgs,
        IntPtr[] expAvgSqs, ReadOnlySpan<long> numels, ReadOnlySpan<double> decays, ReadOnlySpan<double> stepSizes,
        ReadOnlySpan<double> bias2Sqrts, double beta1, double beta2, double eps);

    [LibraryImport("vimdense_native", EntryPoint = "vimdense_sgd_step_cpu_f32")]
    private static partial int SgdStepCpuF32(long count, IntPtr[] parameters, IntPtr[] grads, IntPtr[]? momentumBuffers,
        ReadOnlySpan<long> numels, ReadOnlySpan<double> lrs, ReadOnlySpan<double> weightDecays, double momentum, int firstStep);
}
