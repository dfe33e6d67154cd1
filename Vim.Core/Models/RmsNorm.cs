using Vim.Core.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Root-mean-square norm with a weight and no bias (Mamba's RMSNorm):
/// y = x · (mean(x²) + eps)^(−1/2) · w, computed in fp32 for half/bf16/fp32 inputs (fp64 stays
/// fp64), returned in the input dtype.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public double Eps { get; }

    /// <summary>The per-channel scale w.</summary>
    internal Parameter Weight => weight;

    public RmsNorm(long dim, double eps = 1e-5) : base(nameof(RmsNorm))
    {
        Eps = eps;
        weight = new Parameter(ones(dim));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        FlopCounter.Add("norm", FlopFormulas.RmsNorm(x.numel(), weight: true));
        // In training one function keeps x and the per-row scale for backward instead of every intermediate.
        if (is_grad_enabled() && (x.requires_grad || weight.requires_grad))
            return RmsNormFunction.apply(x, weight, Eps);
        using var scope = NewDisposeScope();
        var compute = RmsNormFunction.ComputeType(x);
        var xf = x.to_type(compute);
        var inverseRms = RmsNormFunction.InverseRms(xf, Eps);
        return (xf * inverseRms * weight.to_type(compute)).to_type(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Inference form for float32: writes the norm of <paramref name="x"/> into <paramref name="output"/>
    /// (same shape, float32) without allocating sequence-sized temporaries (mean(x²) comes from the
    /// 2-norm of each row).
    /// </summary>
    internal void ForwardInto(Tensor x, Tensor output)
    {
        using (FlopCounter.Within(this))
            FlopCounter.Add("norm", FlopFormulas.RmsNorm(x.numel(), weight: true));
        using var scope = NewDisposeScope();
        var inverseRms = linalg.vector_norm(x, 2, new long[] { -1 }, keepdim: true).pow_(2).div_(x.shape[^1]).add_(Eps).rsqrt_();
        output.copy_(x).mul_(inverseRms).mul_(weight);
    }
}
