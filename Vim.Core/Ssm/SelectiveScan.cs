using Vim.Core.Diagnostics;
using TorchSharp;
using Vim.Core.Native;
using static TorchSharp.torch;

namespace Vim.Core.Ssm;

/// <summary>
/// The selective scan used by the Mamba mixer: one entry point, semantics of
/// <see cref="SelectiveScanReference"/>, differentiable in every tensor argument.
/// Backends (<see cref="SelectiveScanBackend"/>) are chosen by device and dtype unless
/// <see cref="DefaultBackend"/> or the explicit overload says otherwise.
/// </summary>
/// <remarks>
/// Shapes: u, delta, z (batch, channels, L); A (channels, N); B, C (batch, N, L); D and deltaBias
/// (channels). Returns (batch, channels, L); the native kernels return float32.
/// With reverse the recurrence runs from the last step to the first, on inputs and outputs in
/// their original order: the result equals flip(scan(flip(u), flip(delta), A, flip(B), flip(C), D,
/// flip(z))) with every sequence flipped along L, without the flipped copies (Vim's backward branch).
/// </remarks>
public static class SelectiveScan
{
    private static volatile SelectiveScanBackend defaultBackend = SelectiveScanBackend.Auto;

    /// <summary>Backend used by <see cref="Apply(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor?, Tensor?, Tensor?, bool, bool)"/>
    /// (process-wide; Auto unless a benchmark or test pins one).</summary>
    public static SelectiveScanBackend DefaultBackend
    {
        get => defaultBackend;
        set => defaultBackend = value;
    }

    /// <summary>Worker threads of the native CPU kernel (default: the CPUs this process may use;
    /// setting 0 or less restores that default).</summary>
    public static int NativeThreads
    {
        get
        {
            SelectiveScanKernels.EnsureLoaded();
            return SelectiveScanNative.GetNumThreads();
        }
        set
        {
            SelectiveScanKernels.EnsureLoaded();
            SelectiveScanNative.SetNumThreads(value);
        }
    }

    /// <summary>
    /// Whether the native CPU pool keeps its CPUs out of idle for a short window after each job
    /// (SCHED_IDLE spinning threads, which give way to any other thread), so that the next job's
    /// workers and libtorch's threads in between start at once instead of waking an idle, on a
    /// virtual machine halted, CPU. On by default unless two CPUs are SMT siblings (where a spinning
    /// thread would slow its sibling); the environment variable VIMDENSE_KEEP_AWAKE=0|1|auto sets the
    /// default. Their spinning is left out of <see cref="Vim.Core.Diagnostics.ResourceUsage.ProcessCpuMicroseconds"/>.
    /// </summary>
    public static bool NativeKeepAwake
    {
        get
        {
            SelectiveScanKernels.EnsureLoaded();
            return SelectiveScanNative.KeepAwakeActive() != 0;
        }
        set
        {
            SelectiveScanKernels.EnsureLoaded();
            SelectiveScanNative.SetKeepAwake(value ? 1 : 0);
        }
    }

    /// <summary>Instruction set the native CPU kernel runs with ("avx512", "avx2" or "scalar").</summary>
    public static string NativeCpuInstructionSet
    {
        get
        {
            SelectiveScanKernels.EnsureLoaded();
            return System.Runtime.InteropServices.Marshal.PtrToStringAnsi(SelectiveScanNative.CpuIsa()) ?? "unknown";
        }
    }

    public static Tensor Apply(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D = null, Tensor? z = null, Tensor? deltaBias = null, bool deltaSoftplus = false, bool reverse = false)
        => Apply(DefaultBackend, u, delta, A, B, C, D, z, deltaBias, deltaSoftplus, reverse);

    /// <summary>The scan on an explicitly chosen backend; throws when that backend cannot run
    /// these tensors (wrong device or dtype, CUDA kernels not built).</summary>
    public static Tensor Apply(SelectiveScanBackend backend, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D = null, Tensor? z = null, Tensor? deltaBias = null, bool deltaSoftplus = false, bool reverse = false)
    {
        var shape = SelectiveScanShape.Validate(u, delta, A, B, C, D, z, deltaBias);
        CountFlops(shape, D, z);
        var chosen = backend == SelectiveScanBackend.Auto ? Choose(u, delta, A, B, C, D, z, deltaBias) : backend;
        if (chosen == SelectiveScanBackend.Reference)
            return reverse
                ? ReferenceReversed(u, delta, A, B, C, D, z, deltaBias, deltaSoftplus)
                : SelectiveScanReference.Forward(u, delta, A, B, C, D, z, deltaBias, deltaSoftplus);
        RequireNative(chosen, u, delta, A, B, C, D, z, deltaBias);
        return RunNative(shape, u, delta, A, B, C, D, z, deltaBias, deltaSoftplus, reverse);
    }

    /// <summary>
    /// Inference form (no autograd) of the native CPU scan: writes the result into <paramref name="output"/>,
    /// a contiguous float32 (batch, channels, L) CPU tensor, instead of allocating it. The output may be
    /// the very memory of <paramref name="delta"/> or <paramref name="u"/> (the kernel reads a row of each
    /// before it writes that row), which lets the mixer keep one buffer for Δ and the result.
    /// </summary>
    public static void ForwardInto(Tensor output, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D = null, Tensor? z = null, Tensor? deltaBias = null, bool deltaSoftplus = false, bool reverse = false)
    {
        var shape = SelectiveScanShape.Validate(u, delta, A, B, C, D, z, deltaBias);
        CountFlops(shape, D, z);
        if (Choose(u, delta, A, B, C, D, z, deltaBias) != SelectiveScanBackend.NativeCpu)
            throw new ArgumentException($"SelectiveScan.ForwardInto needs float32 CPU tensors (the native CPU kernel), got u {u.dtype} on {u.device}", nameof(u));
        if (!output.is_contiguous() || output.dtype != ScalarType.Float32 || output.device_type != u.device_type || output.device_index != u.device_index ||
            output.dim() != 3 || output.size(0) != shape.Batch || output.size(1) != shape.Channels || output.size(2) != shape.Length)
            throw new ArgumentException($"SelectiveScan.ForwardInto: output must be contiguous float32 [{shape.Batch}, {shape.Channels}, {shape.Length}] on {u.device}, got {output.dtype} {SelectiveScanShape.Show(output.shape)}", nameof(output));
        using var scope = NewDisposeScope();
        // All float32 (Choose): contiguous ones go as they are, without the alias Prepare makes (a few
        // µs per call at 48 calls per Vim-Ti forward).
        static Tensor? Contiguous(Tensor? t) => t is null || t.is_contiguous() ? t : t.contiguous();
        SelectiveScanKernels.Forward(shape, Contiguous(u)!, Contiguous(delta)!, Contiguous(A)!, Contiguous(B)!, Contiguous(C)!,
            Contiguous(D), Contiguous(z), Contiguous(deltaBias), deltaSoftplus, reverse, saveCheckpoints: false, out _, output);
    }

    /// <summary>
    /// The backend Auto picks for these tensors: the native kernel of their device for float32, the reference
    /// otherwise. Float32 CUDA tensors with a native library built without CUDA kernels are refused
    /// (<see cref="VimException"/>) rather than sent to the reference, which would hold every step's state in
    /// GPU memory and run orders of magnitude slower without saying so.
    /// </summary>
    public static SelectiveScanBackend Choose(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D = null, Tensor? z = null, Tensor? deltaBias = null)
    {
        bool allFloat32 = SelectiveScanShape.Named(u, delta, A, B, C, D, z, deltaBias)
            .All(t => t.Tensor.dtype == ScalarType.Float32);
        if (!allFloat32) return SelectiveScanBackend.Reference;
        return u.device.type switch
        {
            DeviceType.CPU => SelectiveScanBackend.NativeCpu,
            DeviceType.CUDA when CudaKernelsAvailable => SelectiveScanBackend.Cuda,
            DeviceType.CUDA => throw new VimException(
                $"SelectiveScan: the tensors are on {u.device}, but libvimdense_native was built without CUDA kernels (CMake found no nvcc). " +
                "Rebuild on a machine with the CUDA toolkit (nvcc on PATH): dotnet build -p:TorchBackend=cuda"),
            _ => SelectiveScanBackend.Reference,
        };
    }

    /// <summary>True when libvimdense_native was built with its CUDA kernels.</summary>
    public static bool CudaKernelsAvailable
    {
        get
        {
            SelectiveScanKernels.EnsureLoaded();
            return NativeLibraryInfo.HasCuda;
        }
    }

    private static void RequireNative(SelectiveScanBackend backend, Tensor u, Tensor delta, Tensor A, Tensor B,
        Tensor C, Tensor? D, Tensor? z, Tensor? deltaBias)
    {
        var device = backend == SelectiveScanBackend.Cuda ? DeviceType.CUDA : DeviceType.CPU;
        if (u.device.type != device)
            throw new ArgumentException($"SelectiveScan: the {backend} backend needs {device} tensors, but u is on {u.device}", nameof(u));
        if (backend == SelectiveScanBackend.Cuda && !CudaKernelsAvailable)
            throw new VimException("SelectiveScan: the Cuda backend was requested, but libvimdense_native was built without CUDA kernels (no nvcc at build time); " +
                "rebuild on a machine with the CUDA toolkit (nvcc on PATH)");
        foreach (var (t, name) in SelectiveScanShape.Named(u, delta, A, B, C, D, z, deltaBias))
            if (t.dtype != ScalarType.Float32)
                throw new ArgumentException($"SelectiveScan: the {backend} backend needs float32 tensors, but {name} is {t.dtype}", name);
    }

    /// <summary>Reports the scan to an active <see cref="FlopCounter"/> (VMamba's count, see <see cref="FlopFormulas.SelectiveScan"/>).</summary>
    internal static void CountFlops(SelectiveScanShape shape, Tensor? D, Tensor? z) =>
        FlopCounter.Add("selective_scan", FlopFormulas.SelectiveScan(shape.Batch, shape.Channels, shape.Length, shape.State,
            withSkip: D is not null, withGate: z is not null));

    /// <summary>The reference has no reverse mode: it runs on the time-flipped sequences (the definition).</summary>
    private static Tensor ReferenceReversed(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D, Tensor? z, Tensor? deltaBias, bool softplus)
    {
        using var scope = NewDisposeScope();
        return SelectiveScanReference.Forward(u.flip(-1), delta.flip(-1), A, B.flip(-1), C.flip(-1), D, z?.flip(-1),
            deltaBias, softplus).flip(-1).MoveToOuterDisposeScope();
    }

    private static Tensor RunNative(SelectiveScanShape shape, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D, Tensor? z, Tensor? deltaBias, bool softplus, bool reverse)
    {
        using var scope = NewDisposeScope();
        var uc = SelectiveScanKernels.Prepare(u)!;
        var dc = SelectiveScanKernels.Prepare(delta)!;
        var ac = SelectiveScanKernels.Prepare(A)!;
        var bc = SelectiveScanKernels.Prepare(B)!;
        var cc = SelectiveScanKernels.Prepare(C)!;
        var Dc = SelectiveScanKernels.Prepare(D);
        var zc = SelectiveScanKernels.Prepare(z);
        var biasc = SelectiveScanKernels.Prepare(deltaBias);
        bool needsGraph = is_grad_enabled() &&
            SelectiveScanShape.Named(u, delta, A, B, C, D, z, deltaBias).Any(t => t.Tensor.requires_grad);
        Tensor output = needsGraph
            ? SelectiveScanFunction.apply(uc, dc, ac, bc, cc, Dc!, zc!, biasc!, softplus, reverse)
            : SelectiveScanKernels.Forward(shape, uc, dc, ac, bc, cc, Dc, zc, biasc, softplus, reverse, saveCheckpoints: false, out _);
        return output.MoveToOuterDisposeScope();
    }
}
