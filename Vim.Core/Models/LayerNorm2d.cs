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

    public override Tensor forward(Tensor x)
    {
        FlopCounter.Add("norm", FlopFormulas.Norm(x.numel(), affine: true));
        using var scope = NewDisposeScope();
        using var marks = BackwardProfiler.Open("layer_norm2d");
        x = marks.Input(x);
        var mean = x.mean(new long[] { 1 }, keepdim: true);
        var centered = x - mean;
        var variance = centered.square().mean(new long[] { 1 }, keepdim: true);
        var normed = centered / (variance + Eps).sqrt();
        return marks.Output(normed * weight.reshape(-1, 1, 1) + bias.reshape(-1, 1, 1)).MoveToOuterDisposeScope();
    }
}
