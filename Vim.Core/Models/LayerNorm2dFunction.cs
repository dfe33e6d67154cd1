using TorchSharp;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// <see cref="LayerNorm2d"/> in training as one autograd node: the forward runs the module's own ops (the same values to
/// the bit), and the backward is layer norm's closed form over the channel axis instead of autograd's chain through
/// mean, subtraction, square, mean, sqrt, division, scale and shift. With x̂ = (x − μ)/σ and g = ∂L/∂y·w per channel,
/// ∂L/∂x = (g − mean_c(g) − x̂·mean_c(g·x̂))/σ, ∂L/∂w = Σ_{n,h,w} ∂L/∂y·x̂, ∂L/∂b = Σ_{n,h,w} ∂L/∂y; the same gradients up to
/// float rounding (summation order), in about half the passes over the activation, and it keeps x̂ and σ for backward
/// where autograd kept the centred input, its square and x̂. `vim bench train --backward-breakdown` showed the module's
/// backward at 4–5 % of the demo detector's (its neck, box and mask heads).
/// </summary>
internal sealed class LayerNorm2dFunction : torch.autograd.SingleTensorFunction<LayerNorm2dFunction>
{
    public override string Name => "VimDenseLayerNorm2d";

    private static readonly long[] ChannelAxis = [1];

    /// <summary>x (N, C, H, W), weight and bias (C), eps.</summary>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var bias = (Tensor)vars[2];
        double eps = (double)vars[3];
        using var scope = NewDisposeScope();
        var (normed, deviation) = Normalise(x, eps);
        ctx.save_for_backward([normed.MoveToOuterDisposeScope(), deviation.MoveToOuterDisposeScope(), weight]);
        ctx.save_data("needs", new[] { x.requires_grad, weight.requires_grad, bias.requires_grad });
        return (normed * weight.reshape(-1, 1, 1) + bias.reshape(-1, 1, 1)).MoveToOuterDisposeScope();
    }

    /// <summary>x̂ and σ = √(var + eps) per position, as <see cref="LayerNorm2d"/> computes them.</summary>
    internal static (Tensor Normed, Tensor Deviation) Normalise(Tensor x, double eps)
    {
        var mean = x.mean(ChannelAxis, keepdim: true);
        var centered = x - mean;
        var variance = centered.square().mean(ChannelAxis, keepdim: true);
        var deviation = (variance + eps).sqrt();
        return (centered / deviation, deviation);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = BackwardGradients.Begin();
        using var timed = BackwardProfiler.Region("closed_form");
        var saved = ctx.get_saved_variables();
        Tensor normed = saved[0], deviation = saved[1], weight = saved[2];
        var needs = (bool[])ctx.get_data("needs");
        long[] otherAxes = [0, 2, 3];
        Tensor? dx = null, dWeight = null, dBias = null;
        if (needs[0])
        {
            var g = grad_output * weight.reshape(-1, 1, 1);
            var projection = (g * normed).mean(ChannelAxis, keepdim: true);
            dx = g.sub_(g.mean(ChannelAxis, keepdim: true)).sub_(normed * projection).div_(deviation);
        }
        if (needs[1]) dWeight = (grad_output * normed).sum(otherAxes);
        if (needs[2]) dBias = grad_output.sum(otherAxes);
        return BackwardGradients.Return([dx, dWeight, dBias, null], grad_output);
    }
}
