using Vim.Core.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// A bias-free Conv2d followed by a channels-first LayerNorm, with detectron2's key layout
/// (weight, norm.weight, norm.bias) so pyramid checkpoints map one to one.
/// </summary>
public sealed class NormedConv2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly LayerNorm2d norm;

    public long Padding { get; }

    public NormedConv2d(long inChannels, long outChannels, int kernel, long padding, Generator generator) : base(nameof(NormedConv2d))
    {
        Padding = padding;
        weight = new Parameter(empty(outChannels, inChannels, kernel, kernel));
        WeightInit.KaimingUniformSqrt5(weight, generator);
        norm = new LayerNorm2d(outChannels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor conv;
        using (var marks = BackwardProfiler.Open("conv2d"))
            conv = marks.Output(nn.functional.conv2d(marks.Input(x), weight, padding: new[] { Padding, Padding }));
        FlopCounter.Add("conv", FlopFormulas.Convolution(x.shape, weight.shape, conv.shape, transposed: false));
        return norm.call(conv).MoveToOuterDisposeScope();
    }
}
