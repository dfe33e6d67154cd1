using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Identity in the forward pass, gradient multiplied by a constant in the backward pass.
/// Arguments: input tensor, factor (double).
/// </summary>
internal sealed class ScaleGradientFunction : torch.autograd.SingleTensorFunction<ScaleGradientFunction>
{
    public override string Name => "VimDenseScaleGradient";

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var input = (Tensor)vars[0];
        ctx.save_data("factor", (double)vars[1]);
        // A fresh alias, not the input itself: the autograd node must own its output.
        return input.alias();
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        // May run on the autograd engine's thread, outside the caller's dispose scope.
        using var scope = BackwardGradients.Begin();
        var factor = (double)ctx.get_data("factor");
        return BackwardGradients.Return([grad_output * factor, null], grad_output);
    }
}
