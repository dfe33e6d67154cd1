using Vim.Core.Engine;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Diagnostics;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// The bidirectional Mamba mixer of Vim ("bimamba v2"): one input projection, then a forward branch
/// (causal depthwise conv + SiLU, x_proj → [dt_low | B | C], selective scan gated by SiLU(z)) and a
/// backward branch with its own conv/x_proj/dt_proj/A/D run on the sequence flipped in time; the
/// flipped-back outputs are averaged (if_divide_out) and projected out. Input and output (B, L, dim).
/// </summary>
/// <remarks>Field names are the official state-dict keys; their declaration order is the key order.</remarks>
public sealed class BiMambaMixer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly Parameter A_log;
    private readonly Parameter D;
    private readonly Parameter A_b_log;
    private readonly Parameter D_b;
    private readonly Linear in_proj;
    private readonly Conv1d conv1d;
    private readonly Linear x_proj;
    private readonly Linear dt_proj;
    private readonly Conv1d conv1d_b;
    private readonly Linear x_proj_b;
    private readonly Linear dt_proj_b;
    private readonly Linear out_proj;
#pragma warning restore IDE1006

    public long ModelDim { get; }
    public long InnerDim { get; }
    public long StateSize { get; }
    public long DtRank { get; }
    public int ConvKernel { get; }
    public bool DivideOut { get; }

    public BiMambaMixer(long dim, long stateSize = 16, int convKernel = 4, int expand = 2, long? dtRank = null,
        bool divideOut = true) : base(nameof(BiMambaMixer))
    {
        ModelDim = dim;
        InnerDim = expand * dim;
        StateSize = stateSize;
        DtRank = dtRank ?? (dim + 15) / 16;
        ConvKernel = convKernel;
        DivideOut = divideOut;

        A_log = new Parameter(empty(InnerDim, stateSize));
        D = new Parameter(ones(InnerDim));
        A_b_log = new Parameter(empty(InnerDim, stateSize));
        D_b = new Parameter(ones(InnerDim));
        in_proj = nn.Linear(dim, 2 * InnerDim, hasBias: false);
        conv1d = nn.Conv1d(InnerDim, InnerDim, convKernel, padding: convKernel - 1, groups: InnerDim, bias: true);
        x_proj = nn.Linear(InnerDim, DtRank + 2 * stateSize, hasBias: false);
        dt_proj = nn.Linear(DtRank, InnerDim, hasBias: true);
        conv1d_b = nn.Conv1d(InnerDim, InnerDim, convKernel, padding: convKernel - 1, groups: InnerDim, bias: true);
        x_proj_b = nn.Linear(InnerDim, DtRank + 2 * stateSize, hasBias: false);
        dt_proj_b = nn.Linear(DtRank, InnerDim, hasBias: true);
        out_proj = nn.Linear(InnerDim, dim, hasBias: false);
        RegisterComponents();
    }

    /// <summary>
    /// Official initialisation (section a): A = −[1..N] per channel for both directions, D = 1,
    /// dt_proj weight U(±dt_rank^−½) and bias = softplus⁻¹(dt) with dt log-uniform in [dtMin, dtMax]
    /// (floored at 1e-4); dt_proj_b keeps PyTorch's default weight init and a zero bias (the official
    /// _init_weights zeroes it because it is not marked _no_reinit); out_proj kaiming-uniform(√5)
    /// divided by √depth; conv1d(_b), x_proj(_b), in_proj PyTorch defaults.
    /// </summary>
    public void ResetParameters(Generator generator, int depth, double dtMin = 1e-3, double dtMax = 0.1, double dtFloor = 1e-4)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var aInit = log(arange(1, StateSize + 1, dtype: ScalarType.Float32)).expand(InnerDim, StateSize);
        A_log.copy_(aInit);
        A_b_log.copy_(aInit);
        D.fill_(1);
        D_b.fill_(1);

        WeightInit.KaimingUniformSqrt5(in_proj.weight!, generator);
        WeightInit.KaimingUniformSqrt5(conv1d.weight!, generator);
        WeightInit.DefaultBias(conv1d.bias!, conv1d.weight!, generator);
        WeightInit.KaimingUniformSqrt5(x_proj.weight!, generator);

        double dtStd = Math.Pow(DtRank, -0.5);
        WeightInit.Uniform(dt_proj.weight!, -dtStd, dtStd, generator);
        var dt = exp(rand(new[] { InnerDim }, dtype: ScalarType.Float64, generator: generator)
                     * (Math.Log(dtMax) - Math.Log(dtMin)) + Math.Log(dtMin)).clamp_min(dtFloor);
        dt_proj.bias!.copy_(dt + log(-expm1(-dt)));

        WeightInit.KaimingUniformSqrt5(conv1d_b.weight!, generator);
        WeightInit.DefaultBias(conv1d_b.bias!, conv1d_b.weight!, generator);
        WeightInit.KaimingUniformSqrt5(x_proj_b.weight!, generator);
        WeightInit.KaimingUniformSqrt5(dt_proj_b.weight!, generator);
        dt_proj_b.bias!.zero_();

        WeightInit.KaimingUniformSqrt5(out_proj.weight!, generator);
        out_proj.weight!.div_(Math.Sqrt(depth));
    }

    public override Tensor forward(Tensor hidden)
    {
        if (hidden.dim() != 3 || hidden.shape[2] != ModelDim)
            throw new VimException($"BiMambaMixer expects (B, L, {ModelDim}), got [{string.Join(", ", hidden.shape)}].");
        using var scope = NewDisposeScope();
        return FromInputProjection(InputProjection(hidden.transpose(1, 2))).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The block's RMSNorm of <paramref name="residual"/>, cast to <paramref name="activationType"/>, then the mixer: the same
    /// as <c>forward(norm(residual).to(activationType))</c>. In training (<see cref="RecomputesNormedInput"/>) the norm and
    /// in_proj run as <see cref="NormedProjectionFunction"/>, which keeps the residual for backward instead of the normalised
    /// tokens as well.
    /// </summary>
    public Tensor ForwardNormed(Tensor residual, RmsNorm norm, ScalarType activationType)
    {
        using var counted = FlopCounter.Within(this);
        using var scope = NewDisposeScope();
        using var marks = BackwardProfiler.Open("mixer");
        residual = marks.Input(residual);
        Tensor Normalise(Tensor r)
        {
            using (StageProfiler.Measure("rms_norm"))
            using (FlopCounter.Within(norm))
                return norm.forward(r).to_type(activationType);
        }
        if (!RecomputesNormedInput(residual, norm)) return marks.Output(forward(Normalise(residual))).MoveToOuterDisposeScope();
        if (residual.dim() != 3 || residual.shape[2] != ModelDim)
            throw new VimException($"BiMambaMixer expects (B, L, {ModelDim}), got [{string.Join(", ", residual.shape)}].");
        var run = new NormedProjectionFunction.ProjectionRun(Normalise, InputProjection, norm.Weight, in_proj.weight!);
        var xz = NormedProjectionFunction.Apply(run, residual);
        var replay = RecomputeInputProjection ? new InputProjectionReplay(run, SplitInputProjection) : null;
        return marks.Output(FromInputProjection(xz, replay is null ? null : (replay, residual))).MoveToOuterDisposeScope();
    }

    /// <summary>Whether <see cref="ForwardNormed"/> runs as <see cref="NormedProjectionFunction"/>: autograd on with something
    /// to differentiate and float32 parameters, unless <see cref="RecomputeNormedInput"/> is off.</summary>
    private bool RecomputesNormedInput(Tensor residual, RmsNorm norm) =>
        RecomputeNormedInput && is_grad_enabled() && in_proj.weight!.dtype == ScalarType.Float32 &&
        (residual.requires_grad || norm.Weight.requires_grad || in_proj.weight!.requires_grad);

    /// <summary>
    /// Training memory: when on (the default), a block's norm and in_proj keep only the residual for backward
    /// (<see cref="NormedProjectionFunction"/>); off, plain autograd also keeps the normalised tokens. Tests switch it.
    /// </summary>
    internal bool RecomputeNormedInput { get; set; } = true;

    /// <summary>
    /// Training memory (model.backbone.recompute_in_proj, off by default): when on, the branches that run as
    /// <see cref="MixerBranchFunction"/> in a block keep neither x nor z (in_proj's output) for backward but recompute them
    /// there from the residual, once for both (<see cref="InputProjectionReplay"/>); off, they keep them. Applies with
    /// <see cref="RecomputeNormedInput"/>.
    /// </summary>
    public bool RecomputeInputProjection { get; set; }

    /// <summary>in_proj on channel-major tokens (B, dim, L): W·hiddenᵀ yields the (B, 2·d_inner, L) layout the conv and the
    /// scan read, without a transposed copy (the official code rearranges the same product).</summary>
    private Tensor InputProjection(Tensor tokensChannelMajor)
    {
        using (StageProfiler.Measure("in_proj"))
            return ProjectChannels(in_proj, tokensChannelMajor);
    }

    /// <summary>Both directions from in_proj's output, averaged, and out_proj: (B, 2·d_inner, L) → (B, L, dim). With a
    /// <paramref name="replay"/>, branches that recompute their scan inputs recompute x and z from the residual too.</summary>
    private Tensor FromInputProjection(Tensor xz, (InputProjectionReplay Replay, Tensor Residual)? replay = null)
    {
        using var scope = NewDisposeScope();
        var (x, z) = SplitInputProjection(xz);

        var combined = Branch(x, z, conv1d, x_proj, dt_proj, A_log, D, reverse: false, replay);
        using (var backward = NewDisposeScope())
        {
            var other = Branch(x, z, conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b, reverse: true, replay);
            using var _ = StageProfiler.Measure("combine");
            combined.add_(other);
            if (DivideOut) combined.div_(2);
        }
        using (StageProfiler.Measure("out_proj"))
        using (var marks = BackwardProfiler.Open("out_proj"))
            return marks.Output(out_proj.call(marks.Input(combined.transpose(1, 2)))).MoveToOuterDisposeScope();
    }

    /// <summary>x and z, the branches' inputs, from in_proj's output: its two halves in the scan's precision.</summary>
    private (Tensor X, Tensor Z) SplitInputProjection(Tensor xz) =>
        (ScanPrecision(xz.narrow(1, 0, InnerDim)), ScanPrecision(xz.narrow(1, InnerDim, InnerDim)));

    /// <summary>
    /// One direction on (B, d_inner, L) inputs in time order. The backward direction (reverse) is the
    /// official branch on the flipped sequence, flipped back, computed without any flip of the
    /// activations: its causal conv on flip(x) is an anti-causal conv on x with the kernel reversed
    /// (step t sees t..t+k−1), and the scan runs from L−1 down to 0 on time-ordered tensors.
    /// </summary>
    private Tensor Branch(Tensor x, Tensor z, Conv1d conv, Linear xProj, Linear dtProj, Tensor aLog, Tensor dSkip,
        bool reverse, (InputProjectionReplay Replay, Tensor Residual)? replay = null)
    {
        // Its own scope: in inference the branch's temporaries are freed before the other branch runs,
        // halving the mixer's peak memory (autograd keeps what backward needs regardless).
        using var scope = NewDisposeScope();
        // A, D and the Δ bias stay in the parameters' precision (fp32 in practice, as the official code forces).
        var a = -exp(aLog);
        if (RecomputesScanInputs(x, conv, xProj, dtProj, aLog, dSkip))
        {
            // The function runs the native kernel itself, so the scan is counted here (the recomputation counts its own layers).
            SelectiveScan.CountFlops(new SelectiveScanShape(x.shape[0], InnerDim, x.shape[2], StateSize), dSkip, z);
            var run = new MixerBranchFunction.BranchRun(
                input => ConvOutput(input, conv, reverse),
                u => ProjectX(xProj, u),
                xDbl => FromXProjection(xDbl, dtProj),
                reverse, [conv.weight!, conv.bias!, xProj.weight!, dtProj.weight!], replay?.Replay);
            return MixerBranchFunction.Apply(run, x, z, a, dSkip, dtProj.bias!, replay?.Residual).MoveToOuterDisposeScope();
        }
        var (u, delta, b, c) = ScanInputsOf(x, conv, xProj, dtProj, reverse);
        using var scan = StageProfiler.Measure("scan");
        return SelectiveScan.Apply(u, delta, a, b, c, dSkip, z, dtProj.bias!, deltaSoftplus: true, reverse: reverse)
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether a branch runs as <see cref="MixerBranchFunction"/>, which keeps neither u nor Δ for backward: in training
    /// (autograd on, something to differentiate) with float32 parameters on a device whose native scan is built (and not
    /// pinned to another backend by <see cref="SelectiveScan.DefaultBackend"/>), unless <see cref="RecomputeScanInputs"/> is
    /// off. Other cases (float64, the reference scan) keep plain autograd.
    /// </summary>
    private bool RecomputesScanInputs(Tensor x, Conv1d conv, Linear xProj, Linear dtProj, Tensor aLog, Tensor dSkip) =>
        RecomputeScanInputs && is_grad_enabled() && aLog.dtype == ScalarType.Float32 &&
        (x.requires_grad || conv.weight!.requires_grad || conv.bias!.requires_grad || xProj.weight!.requires_grad ||
         dtProj.weight!.requires_grad || dtProj.bias!.requires_grad || aLog.requires_grad || dSkip.requires_grad) &&
        SelectiveScan.DefaultBackend switch
        {
            SelectiveScanBackend.Auto => x.device.type == DeviceType.CPU || (x.device.type == DeviceType.CUDA && SelectiveScan.CudaKernelsAvailable),
            SelectiveScanBackend.NativeCpu => x.device.type == DeviceType.CPU,
            SelectiveScanBackend.Cuda => x.device.type == DeviceType.CUDA && SelectiveScan.CudaKernelsAvailable,
            _ => false,
        };

    /// <summary>
    /// Training memory: when on (the default), each branch keeps only its inputs, x_proj's thin output and the scan's chunk
    /// states for backward and recomputes u and Δ there (<see cref="MixerBranchFunction"/>); off, plain autograd keeps them.
    /// The same results and gradients either way; tests and memory comparisons switch it.
    /// </summary>
    internal bool RecomputeScanInputs { get; set; } = true;

    /// <summary>
    /// The scan's sequence inputs of one direction: u = SiLU(conv(x)) (causal, or for the backward branch anti-causal
    /// with the taps reversed), then x_proj's rows split into Δ_low, B, C and Δ = dt_proj(Δ_low) without its bias (the scan
    /// adds it before the softplus, as the fused path does). Every sequence comes out float32 for the native kernels.
    /// </summary>
    private (Tensor U, Tensor Delta, Tensor B, Tensor C) ScanInputsOf(Tensor x, Conv1d conv, Linear xProj, Linear dtProj, bool reverse)
    {
        var u = ConvOutput(x, conv, reverse);
        var (delta, b, c) = FromXProjection(ProjectX(xProj, u), dtProj);
        return (u, delta, b, c);
    }

    /// <summary>u = SiLU(conv(x)), float32.</summary>
    private Tensor ConvOutput(Tensor x, Conv1d conv, bool reverse)
    {
        using (StageProfiler.Measure("conv_silu"))
        using (FlopCounter.Within(conv))
            return ScanPrecision(ConvSilu.Apply(x, conv.weight!, conv.bias, reverse));
    }

    /// <summary>x_proj's rows [Δ_low | B | C] (batch, dt_rank + 2N, L), channel-major (W·u), so B and C arrive in the scan's
    /// (B, N, L) layout; in autocast's half type under autocast.</summary>
    private static Tensor ProjectX(Linear xProj, Tensor u)
    {
        using (StageProfiler.Measure("x_proj"))
            return ProjectChannels(xProj, u);
    }

    /// <summary>Δ = dt_proj(Δ_low) in (B, d_inner, L) without its bias (the scan adds it before the softplus, as the fused
    /// path does), and B and C, all float32.</summary>
    private (Tensor Delta, Tensor B, Tensor C) FromXProjection(Tensor xDbl, Linear dtProj)
    {
        var dtLow = xDbl.narrow(1, 0, DtRank);
        var b = ScanPrecision(xDbl.narrow(1, DtRank, StateSize));
        var c = ScanPrecision(xDbl.narrow(1, DtRank + StateSize, StateSize));
        using (StageProfiler.Measure("dt_proj"))
            return (ScanPrecision(ProjectChannels(dtProj, dtLow)), b, c);
    }

    /// <summary>
    /// Inference forward (no autograd, float32 CPU) into <paramref name="output"/> (B, L, dim): the same
    /// computation as <see cref="forward"/>, with every intermediate written into the buffers of
    /// <paramref name="workspace"/> (reused by every block) instead of freshly allocated tensors.
    /// </summary>
    internal void ForwardInto(Tensor hidden, Tensor output, MambaInferenceWorkspace workspace)
    {
        using var scope = NewDisposeScope();
        using var counted = FlopCounter.Within(this);
        long batch = hidden.shape[0], length = hidden.shape[1];
        var xz = workspace.Get("xz", batch, 2 * InnerDim, length);
        using (StageProfiler.Measure("in_proj"))
        using (CountProjection(in_proj, batch, length))
            for (long i = 0; i < batch; i++)
                xz[i].addmm_(in_proj.weight!, hidden[i].t(), beta: 0, alpha: 1);
        var x = xz.narrow(1, 0, InnerDim);
        var z = xz.narrow(1, InnerDim, InnerDim);
        if (batch > 1)
        {
            // The scan reads z contiguous: one copy here instead of one per branch.
            var zc = workspace.Get("z", batch, InnerDim, length);
            zc.copy_(z);
            z = zc;
        }
        // Buffers: the forward branch's Δ buffer then receives its output; the backward branch's Δ goes
        // into x (dead once its conv has read it; with batch 1 x is a contiguous block of xz) and its
        // output over that Δ. The native CPU scan reads each row's Δ before it writes that row's output,
        // so an output may share its Δ's memory. Sequence-sized peak: xz, u and one Δ/output buffer.
        var forwardOut = workspace.Get("delta", batch, InnerDim, length);
        var backwardOut = batch == 1 ? x : workspace.Get("delta_backward", batch, InnerDim, length);
        BranchInto(x, z, conv1d, x_proj, dt_proj, A_log, D, reverse: false, forwardOut, workspace);
        BranchInto(x, z, conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b, reverse: true, backwardOut, workspace);
        using (StageProfiler.Measure("combine"))
        {
            forwardOut.add_(backwardOut);
            if (DivideOut) forwardOut.div_(2);
        }
        using (StageProfiler.Measure("out_proj"))
        using (CountProjection(out_proj, batch, length))
            for (long i = 0; i < batch; i++)
                output[i].addmm_(forwardOut[i].t(), out_proj.weight!.t(), beta: 0, alpha: 1);
    }

    /// <summary>True when <see cref="ForwardInto"/> can run on <paramref name="hidden"/> (float32 CPU
    /// activations and parameters, a conv the native kernel takes).</summary>
    internal bool CanForwardInto(Tensor hidden) =>
        hidden.dtype == ScalarType.Float32 && hidden.device.type == DeviceType.CPU &&
        in_proj.weight!.dtype == ScalarType.Float32 && A_log.dtype == ScalarType.Float32 &&
        ConvSilu.CanApplyInto(ScalarType.Float32, DeviceType.CPU, conv1d.weight!, conv1d.bias) &&
        ConvSilu.CanApplyInto(ScalarType.Float32, DeviceType.CPU, conv1d_b.weight!, conv1d_b.bias);

    /// <summary>One direction (see <see cref="Branch"/>): Δ is computed into <paramref name="deltaAndOutput"/>
    /// and the scan output overwrites it there.</summary>
    private void BranchInto(Tensor x, Tensor z, Conv1d conv, Linear xProj, Linear dtProj, Tensor aLog, Tensor dSkip,
        bool reverse, Tensor deltaAndOutput, MambaInferenceWorkspace workspace)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], length = x.shape[2];
        var u = workspace.Get("u", batch, InnerDim, length);
        using (StageProfiler.Measure("conv_silu"))
        using (FlopCounter.Within(conv))
            ConvSilu.ApplyInto(x, conv.weight!, conv.bias, reverse, u);
        var xDbl = workspace.Get("x_dbl", batch, DtRank + 2 * StateSize, length);
        using (StageProfiler.Measure("x_proj"))
        using (CountProjection(xProj, batch, length))
            for (long i = 0; i < batch; i++)
                xDbl[i].addmm_(xProj.weight!, u[i], beta: 0, alpha: 1);
        using (StageProfiler.Measure("dt_proj"))
        using (CountProjection(dtProj, batch, length))
            for (long i = 0; i < batch; i++)
                deltaAndOutput[i].addmm_(dtProj.weight!, xDbl[i].narrow(0, 0, DtRank), beta: 0, alpha: 1);
        var a = -exp(aLog);
        using var stage = StageProfiler.Measure("scan");
        SelectiveScan.ForwardInto(deltaAndOutput, u, deltaAndOutput, a, xDbl.narrow(1, DtRank, StateSize),
            xDbl.narrow(1, DtRank + StateSize, StateSize), dSkip, z, dtProj.bias!, deltaSoftplus: true, reverse: reverse);
    }

    /// <summary>
    /// Under autocast the projections come out in bf16/fp16; the conv and the scan take them in the
    /// parameters' float32 (the official fused kernels also compute in fp32), which keeps both on the
    /// native kernels instead of the slow tensor-op fallback. Other dtypes pass through.
    /// </summary>
    private Tensor ScanPrecision(Tensor t) =>
        A_log.dtype == ScalarType.Float32 ? Autocast.WidenHalf(t) : t;

    /// <summary>
    /// Opens <paramref name="layer"/>'s FLOP scope and counts its product over (batch, length) positions: the mixer
    /// multiplies by the projections' weights itself (below), so their hooks never run.
    /// </summary>
    private static FlopCounter.Scope CountProjection(Linear layer, long batch, long length)
    {
        var scope = FlopCounter.Within(layer);
        FlopCounter.Add("linear", FlopFormulas.Linear(batch * length * layer.in_features, layer.out_features));
        return scope;
    }

    /// <summary>W·x per batch element: the layer's weight (out, in), x (B, in, L) in any strides → (B, out, L) contiguous.</summary>
    /// <remarks>
    /// Not matmul(W, x): when W requires grad (a parameter, even under no_grad) libtorch's matmul
    /// "folds" the problem into (B·L, in)·Wᵀ and returns a transposed view, so every later
    /// channel-major reader copies it (measured: in_proj 3×, dt_proj 4× slower). mm and bmm take
    /// strided operands directly and write a contiguous result.
    /// </remarks>
    private static Tensor ProjectChannels(Linear layer, Tensor x)
    {
        using var counted = CountProjection(layer, x.shape[0], x.shape[2]);
        var weight = layer.weight!;
        return x.shape[0] == 1
            ? mm(weight, x.select(0, 0)).unsqueeze(0)
            : bmm(weight.unsqueeze(0).expand(x.shape[0], -1, -1), x);
    }
}
