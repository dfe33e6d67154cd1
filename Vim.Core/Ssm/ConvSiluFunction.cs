using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;
using Vim.Core.Native;

namespace Vim.Core.Ssm;

/// <summary>
/// The native fused conv1d + bias + SiLU as a TorchSharp autograd function. Arguments: x (float32,
/// rows contiguous), weight (channels, k) contiguous, bias (channels)?, reverse (bool). Saves x and the
/// weights; the backward recomputes the pre-activation (cheaper than storing it).
/// </summary>
internal sealed class ConvSiluFunction : torch.autograd.SingleTensorFunction<ConvSiluFunction>
{
    public override string Name => "VimDenseConvSilu";

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        if (vars.Length != 4)
            throw new ArgumentException($"ConvSiluFunction expects 4 arguments, got {vars.Length}");
        var x = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var bias = vars[2] as Tensor;
        var reverse = (bool)vars[3];
        ctx.save_for_backward(new List<Tensor> { x, weight, bias! });
        ctx.save_data("reverse", reverse);
        ctx.save_data("needs", new[] { x.requires_grad, weight.requires_grad, bias?.requires_grad ?? false });
        return Forward(x, weight, bias, reverse);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = BackwardGradients.Begin();
        var saved = ctx.get_saved_variables();
        var reverse = (bool)ctx.get_data("reverse");
        var needs = (bool[])ctx.get_data("needs");
        var x = saved[0];
        var weight = saved[1];
        var bias = saved[2] is null || saved[2].IsInvalid ? null : saved[2];
        var dout = SelectiveScanKernels.Prepare(grad_output)!;
        long batch = x.shape[0], channels = x.shape[1], length = x.shape[2], width = weight.shape[1];
        var dx = empty(new[] { batch, channels, length }, ScalarType.Float32);
        var dw = empty(new[] { channels, width }, ScalarType.Float32);
        var db = bias is null ? null : empty(new[] { channels }, ScalarType.Float32);
        SelectiveScanKernels.EnsureLoaded();
        int rc = SelectiveScanNative.ConvSiluBackwardCpu(TensorMemory.Of(x), x.stride(0), TensorMemory.Of(weight), TensorMemory.Of(bias), reverse ? 1 : 0,
            batch, channels, length, width, TensorMemory.Of(dout), TensorMemory.Of(dx), TensorMemory.Of(dw), TensorMemory.Of(db));
        GC.KeepAlive(x); GC.KeepAlive(weight); GC.KeepAlive(bias); GC.KeepAlive(dout);
        GC.KeepAlive(dx); GC.KeepAlive(dw); GC.KeepAlive(db);
        SelectiveScanNative.Check(rc, "conv1d+SiLU backward");
        return BackwardGradients.Return([needs[0] ? dx : null, needs[1] ? dw : null, needs[2] ? db : null, null], grad_output);
    }

    /// <summary>The native forward (also the no-grad path), into <paramref name="output"/> when given
    /// (float32, contiguous (batch, channels, L)).</summary>
    internal static Tensor Forward(Tensor x, Tensor weight, Tensor? bias, bool reverse, Tensor? output = null)
    {
        SelectiveScanKernels.EnsureLoaded();
        long batch = x.shape[0], channels = x.shape[1], length = x.shape[2], width = weight.shape[1];
        output ??= empty(new[] { batch, channels, length }, ScalarType.Float32);
        int rc = SelectiveScanNative.ConvSiluForwardCpu(TensorMemory.Of(x), x.stride(0), TensorMemory.Of(weight), TensorMemory.Of(bias), reverse ? 1 : 0,
            batch, channels, length, width, TensorMemory.Of(output));
        GC.KeepAlive(x); GC.KeepAlive(weight); GC.KeepAlive(bias); GC.KeepAlive(output);
        SelectiveScanNative.Check(rc, "conv1d+SiLU forward");
        return output;
    }
}
