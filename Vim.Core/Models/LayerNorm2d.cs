using Vim.Core.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>LayerNorm over the channel axis of (B, C, H, W) maps (detectron2's channels-first "LN").</summary>
public sealed class LayerNorm2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    public double Eps { get; }

    public LayerNorm2d(long channels, double eps = 1e-6) : base(nameof(LayerNorm2d))
    {
        Eps = eps;
        weight = new Parameter(ones(channels));
        bias = new Parameter(zeros(channels));
        RegisterComponents();
    }

    /// <summary>
    /// Whether training runs the module as <see cref="LayerNorm2dFunction"/> (closed-form backward; the default) or as plain
    /// autograd over its ops: the same forward to the bit and gradients equal up to float rounding either way.
    /// VIMDENSE_FUSED_LAYERNORM2D=0 keeps autograd's; `vim bench train --layer-norm-2d both` switches it to time both.
    /// </summary>
    public static bool ClosedFormBackward { get; set; } = Environment.GetEnvironmentVariable("VIMDENSE_FUSED_LAYERNORM2D") != "0";

    public override Tensor forward(Tensor x)
    {
        FlopCounter.Add("norm", FlopFormulas.Norm(x.numel(), affine: true));
        using var scope = NewDisposeScope();
        using var marks = BackwardProfiler.Open("layer_norm2d");
        x = marks.Input(x);
        if (UsesClosedFormBackward(x))
            return marks.Output(LayerNorm2dFunction.apply(x, weight, bias, Eps)).MoveToOuterDisposeScope();
        var (normed, _) = LayerNorm2dFunction.Normalise(x, Eps);
        return marks.Output(normed * weight.reshape(-1, 1, 1) + bias.reshape(-1, 1, 1)).MoveToOuterDisposeScope();
    }

    /// <summary>In training with something to differentiate, on float32/float64 maps of the parameters' type (a half-type
    /// map under autocast keeps autograd's ops, whose casts autocast chooses).</summary>
    private bool UsesClosedFormBackward(Tensor x) =>
        ClosedFormBackward && is_grad_enabled() && (x.requires_grad || weight.requires_grad || bias.requires_grad) &&
        x.dtype is ScalarType.Float32 or ScalarType.Float64 && weight.dtype == x.dtype && bias.dtype == x.dtype;
}
