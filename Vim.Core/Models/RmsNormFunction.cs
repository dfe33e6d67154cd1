using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// RMSNorm y = x · r · w, r = (mean(x²) + eps)^(−½) over the last dimension, as one autograd function that keeps for
/// backward only x and the per-row r (mamba_ssm's fused rms_norm keeps x and rstd the same way), where plain autograd
/// over the ops would also keep the normalised x · r, a second (B, L, dim) tensor per block. Arguments: x, the weight
/// (dim), eps (double). Computes in float32 (float64 for float64 input) and returns x's dtype, as <see cref="RmsNorm"/>.
/// </summary>
/// <remarks>
/// Backward, with g = dy · w (both in the compute type): dw = Σ over rows of dy · x · r, and
/// dx = r · g − x · r³ · mean(g · x), the derivative of x · r through r's dependence on every element of its row.
/// </remarks>
internal sealed class RmsNormFunction : torch.autograd.SingleTensorFunction<RmsNormFunction>
{
    public override string Name => "VimDenseRmsNorm";

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var eps = (double)vars[2];
        using var scope = NewDisposeScope();
        var compute = ComputeType(x);
        var xc = x.to_type(compute);
        var inverseRms = InverseRms(xc, eps);
        ctx.save_for_backward([x, weight, inverseRms.MoveToOuterDisposeScope()]);
        ctx.save_data("needs", new[] { x.requires_grad, weight.requires_grad });
        return (xc * inverseRms * weight.to_type(compute)).to_type(x.dtype).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = BackwardGradients.Begin();
        var saved = ctx.get_saved_variables();
        var needs = (bool[])ctx.get_data("needs");
        Tensor x = saved[0], weight = saved[1], inverseRms = saved[2];
        var compute = ComputeType(x);
        var xc = x.to_type(compute);
        var dy = grad_output.to_type(compute);
        Tensor? dx = null, dw = null;
        if (needs[0])
        {
            var g = dy * weight.to_type(compute);
            var projection = (g * xc).mean([-1], keepdim: true);
            dx = (g * inverseRms - xc * inverseRms.pow(3) * projection).to_type(x.dtype);
        }
        if (needs[1])
            dw = (dy * xc * inverseRms).reshape(-1, x.shape[^1]).sum([0]).to_type(weight.dtype);
        return BackwardGradients.Return([dx, dw, null], grad_output);
    }

    /// <summary>Float32 for half, bfloat16 and float32 input; float64 stays float64.</summary>
    internal static ScalarType ComputeType(Tensor x) => x.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>(mean(x²) + eps)^(−½) over the last dimension, kept as a (…, 1) column.</summary>
    internal static Tensor InverseRms(Tensor x, double eps) => (x.square().mean([-1], keepdim: true) + eps).rsqrt();
}
