using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Ssm;

/// <summary>
/// The native selective scan as a TorchSharp autograd function. Arguments, in order:
/// u, delta, A, B, C, D?, z?, deltaBias?, deltaSoftplus (bool), reverse (bool). Tensors are float32, contiguous,
/// validated, on one device. The forward saves the inputs and the chunk checkpoints (the state
/// every 64 steps); the backward recomputes the states chunk by chunk in the native kernel.
/// </summary>
internal sealed class SelectiveScanFunction : torch.autograd.SingleTensorFunction<SelectiveScanFunction>
{
    public override string Name => "VimDenseSelectiveScan";

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (u, delta, A, B, C, D, z, deltaBias, softplus, reverse) = Unpack(vars);
        var shape = SelectiveScanShape.Validate(u, delta, A, B, C, D, z, deltaBias);
        var output = SelectiveScanKernels.Forward(shape, u, delta, A, B, C, D, z, deltaBias, softplus, reverse,
            saveCheckpoints: true, out var checkpoints);
        ctx.save_for_backward(new List<Tensor> { u, delta, A, B, C, D!, z!, deltaBias!, checkpoints! });
        ctx.save_data("softplus", softplus);
        ctx.save_data("reverse", reverse);
        ctx.save_data("shape", shape);
        // needs_input_grad does not exist in TorchSharp: remember which inputs want a gradient.
        ctx.save_data("needs", new[]
        {
            u.requires_grad, delta.requires_grad, A.requires_grad, B.requires_grad, C.requires_grad,
            D?.requires_grad ?? false, z?.requires_grad ?? false, deltaBias?.requires_grad ?? false,
        });
        return output;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        // Backward may run on the autograd engine's thread, which the caller's dispose scope does not reach.
        using var scope = BackwardGradients.Begin();
        var saved = ctx.get_saved_variables();
        var softplus = (bool)ctx.get_data("softplus");
        var reverse = (bool)ctx.get_data("reverse");
        var shape = (SelectiveScanShape)ctx.get_data("shape");
        var needs = (bool[])ctx.get_data("needs");
        Tensor? Opt(int i) => saved[i] is null || saved[i].IsInvalid ? null : saved[i];
        var dout = SelectiveScanKernels.Prepare(grad_output)!;
        var g = SelectiveScanKernels.Backward(shape, saved[0], saved[1], saved[2], saved[3], saved[4],
            Opt(5), Opt(6), Opt(7), softplus, reverse, Opt(8), dout);
        Tensor? Keep(Tensor? t, int i) => needs[i] ? t : null;
        return BackwardGradients.Return(
        [
            Keep(g.du, 0), Keep(g.ddelta, 1), Keep(g.dA, 2), Keep(g.dB, 3), Keep(g.dC, 4),
            Keep(g.dD, 5), Keep(g.dz, 6), Keep(g.ddeltaBias, 7), null, null,
        ], grad_output);
    }

    private static (Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? deltaBias, bool softplus, bool reverse)
        Unpack(object[] vars)
    {
        if (vars.Length != 10)
            throw new ArgumentException($"SelectiveScanFunction expects 10 arguments, got {vars.Length}");
        return ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (Tensor)vars[4],
            vars[5] as Tensor, vars[6] as Tensor, vars[7] as Tensor, (bool)vars[8], (bool)vars[9]);
    }
}
