using TorchSharp;
using Vim.Core.Engine;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// One direction of the Vim mixer in training (conv1d + SiLU, x_proj, dt_proj, then the selective scan gated by
/// SiLU(z)) as a single autograd function that keeps for backward only what is cheap to hold: its inputs (x and z,
/// views of in_proj's output, which the other branch holds anyway), A, D, the Δ bias and the scan's chunk states.
/// Backward recomputes the scan inputs u, Δ, B and C from x (a conv, two thin projections) and differentiates that
/// recomputation, so the two sequence-sized tensors per branch that plain autograd keeps (u, saved by the scan and
/// x_proj, and Δ) are never held across the network. The official mamba_inner_fn makes the same trade
/// (checkpoint_lvl 1: conv1d_out and delta recomputed in backward).
/// </summary>
/// <remarks>
/// Arguments: the <see cref="BranchRun"/>, x, z, A, D, Δ bias, then the parameters the recomputation reads (the
/// conv's weight and bias, x_proj's and dt_proj's weights), which are passed so that their gradients flow through
/// this function's graph edges. Results equal the plain path's bit for bit, gradients included: backward runs the
/// same operations on the same values (the recomputation under the forward's autocast settings), and the one
/// tensor that receives two gradient contributions, u (from the scan and from x_proj), adds them in one
/// commutative sum either way.
/// </remarks>
internal sealed class MixerBranchFunction : torch.autograd.SingleTensorFunction<MixerBranchFunction>
{
    public override string Name => "VimDenseMixerBranch";

    /// <summary>What backward needs besides saved tensors: how to recompute the scan inputs, the direction, the autocast settings.</summary>
    internal sealed class BranchRun(Func<Tensor, ScanInputs> recompute, bool reverse, Tensor[] parameters)
    {
        public Func<Tensor, ScanInputs> Recompute { get; } = recompute;
        public bool Reverse { get; } = reverse;
        /// <summary>The tensors <see cref="Recompute"/> reads besides x that may need gradients (the conv's weight and bias, x_proj's and dt_proj's weights).</summary>
        public Tensor[] Parameters { get; } = parameters;
        public Autocast.Settings AutocastSettings { get; set; }
    }

    /// <summary>The scan's sequence inputs: u and Δ (batch, d_inner, L), B and C (batch, N, L), all float32 for the native kernels.</summary>
    internal readonly record struct ScanInputs(Tensor U, Tensor Delta, Tensor B, Tensor C);

    private const int ParameterStart = 6;

    /// <summary>The branch's gated scan output (batch, d_inner, L), float32.</summary>
    public static Tensor Apply(BranchRun run, Tensor x, Tensor z, Tensor A, Tensor D, Tensor deltaBias)
    {
        var arguments = new object[ParameterStart + run.Parameters.Length];
        arguments[0] = run;
        arguments[1] = x;
        arguments[2] = z;
        arguments[3] = A;
        arguments[4] = D;
        arguments[5] = deltaBias;
        for (int i = 0; i < run.Parameters.Length; i++) arguments[ParameterStart + i] = run.Parameters[i];
        return apply(arguments);
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var run = (BranchRun)vars[0];
        Tensor x = (Tensor)vars[1], z = (Tensor)vars[2], A = (Tensor)vars[3], D = (Tensor)vars[4], deltaBias = (Tensor)vars[5];
        run.AutocastSettings = Autocast.Current();
        using var scope = NewDisposeScope();
        ScanInputs inputs;
        // The same settings with the cast cache off: a cast cached here, where autograd is off, would carry no history
        // for a later use of the same weight in this autocast region.
        using (Autocast.Reproduce(run.AutocastSettings))
            inputs = run.Recompute(x);
        var (u, delta, b, c) = Prepared(inputs);
        var shape = SelectiveScanShape.Validate(u, delta, A, b, c, D, z, deltaBias);
        var output = SelectiveScanKernels.Forward(shape, u, delta, Prepare(A), b, c, Prepare(D), Prepare(z), Prepare(deltaBias),
            softplus: true, run.Reverse, saveCheckpoints: true, out var checkpoints);
        checkpoints!.MoveToOuterDisposeScope();
        ctx.save_for_backward([x, z, A, D, deltaBias, checkpoints]);
        ctx.save_data("run", run);
        ctx.save_data("shape", shape);
        ctx.save_data("needs", vars.Skip(1).Select(v => v is Tensor { requires_grad: true }).ToArray());
        return output.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        // Backward may run on the autograd engine's thread, which the caller's dispose scopes do not reach.
        using var scope = BackwardGradients.Begin();
        var run = (BranchRun)ctx.get_data("run");
        var shape = (SelectiveScanShape)ctx.get_data("shape");
        var needs = (bool[])ctx.get_data("needs");
        var saved = ctx.get_saved_variables();
        Tensor x = saved[0].detach().requires_grad_(needs[0]), z = saved[1], A = saved[2], D = saved[3], deltaBias = saved[4];
        var checkpoints = saved[5];

        ScanInputs recomputed;
        using (enable_grad())
        using (Autocast.Reproduce(run.AutocastSettings))
            recomputed = run.Recompute(x);
        var (u, delta, b, c) = Prepared(recomputed);
        var dout = SelectiveScanKernels.Prepare(grad_output)!;
        var g = SelectiveScanKernels.Backward(shape, u.detach(), delta.detach(), Prepare(A), b.detach(), c.detach(), Prepare(D),
            Prepare(z), Prepare(deltaBias), softplus: true, run.Reverse, checkpoints, dout);

        var gradients = new Tensor?[1 + needs.Length];
        gradients[2] = needs[1] ? g.dz : null;
        gradients[3] = needs[2] ? g.dA : null;
        gradients[4] = needs[3] ? g.dD : null;
        gradients[5] = needs[4] ? g.ddeltaBias : null;

        // The scan's gradients with respect to its sequence inputs, carried back through the recomputation to x and the
        // conv and projection weights.
        var parameters = run.Parameters;
        var targets = new List<(Tensor Tensor, int Slot)>();
        if (needs[0]) targets.Add((x, 1));
        for (int i = 0; i < parameters.Length; i++)
            if (needs[ParameterStart - 1 + i]) targets.Add((parameters[i], ParameterStart + i));
        var sequence = new[] { (recomputed.U, g.du), (recomputed.Delta, g.ddelta), (recomputed.B, g.dB), (recomputed.C, g.dC) }
            .Where(p => p.Item1.requires_grad).ToList();
        if (targets.Count > 0 && sequence.Count > 0)
        {
            var found = torch.autograd.grad(sequence.Select(p => p.Item1).ToList(), targets.Select(t => t.Tensor).ToList(),
                sequence.Select(p => p.Item2.to_type(p.Item1.dtype)).ToList(), allow_unused: true);
            for (int k = 0; k < targets.Count; k++)
                if (found[k] is { IsInvalid: false } gradient) gradients[targets[k].Slot] = gradient;
        }
        return BackwardGradients.Return(gradients, grad_output);
    }

    /// <summary>The form the native kernels read: float32, contiguous (an alias when already so; z, a view of in_proj's
    /// output, is saved as the view and copied only while a kernel reads it).</summary>
    private static Tensor Prepare(Tensor t) => SelectiveScanKernels.Prepare(t)!;

    private static ScanInputs Prepared(ScanInputs inputs) =>
        new(Prepare(inputs.U), Prepare(inputs.Delta), Prepare(inputs.B), Prepare(inputs.C));
}
