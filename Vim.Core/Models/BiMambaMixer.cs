using TorchSharp;
using TorchSharp.Modules;
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
        var xz = in_proj.forward(hidden).transpose(1, 2);          // (B, 2·d_inner, L)
        var x = xz.narrow(1, 0, InnerDim);
        var z = xz.narrow(1, InnerDim, InnerDim);

        var combined = Branch(x, z, conv1d, x_proj, dt_proj, A_log, D);
        using (var flipped = NewDisposeScope())
            combined.add_(Branch(x.flip(-1), z.flip(-1), conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b).flip(-1));
        if (DivideOut) combined.div_(2);
        return out_proj.forward(combined.transpose(1, 2)).MoveToOuterDisposeScope();
    }

    /// <summary>One direction on (B, d_inner, L) inputs in that direction's time order.</summary>
    private Tensor Branch(Tensor x, Tensor z, Conv1d conv, Linear xProj, Linear dtProj, Tensor aLog, Tensor dSkip)
    {
        // Its own scope: in inference the branch's temporaries are freed before the other branch runs,
        // halving the mixer's peak memory (autograd keeps what backward needs regardless).
        using var scope = NewDisposeScope();
        long length = x.shape[2];
        // Padding k−1 on both sides, keeping the first L outputs = causal conv (step t sees t−k+1..t).
        var u = nn.functional.silu(conv.forward(x).narrow(2, 0, length));
        var xDbl = xProj.forward(u.transpose(1, 2));                 // (B, L, r + 2N)
        var dtLow = xDbl.narrow(2, 0, DtRank);
        var b = xDbl.narrow(2, DtRank, StateSize).transpose(1, 2).contiguous();
        var c = xDbl.narrow(2, DtRank + StateSize, StateSize).transpose(1, 2).contiguous();
        // The bias is applied inside the scan (delta_bias) before the softplus, as the fused path does.
        var delta = nn.functional.linear(dtLow, dtProj.weight!).transpose(1, 2).contiguous();
        // A, D and the Δ bias stay in the parameters' precision (fp32 in practice, as the official code forces).
        var a = -exp(aLog);
        return SelectiveScan.Apply(u.contiguous(), delta, a, b, c, dSkip, z.contiguous(), dtProj.bias!, deltaSoftplus: true)
            .MoveToOuterDisposeScope();
    }
}
