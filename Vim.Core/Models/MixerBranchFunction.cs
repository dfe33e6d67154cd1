using TorchSharp;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// One direction of the Vim mixer in training (conv1d + SiLU, x_proj, dt_proj, then the selective scan gated by
/// SiLU(z)) as a single autograd function that keeps for backward only what is cheap to hold: its inputs (x and z,
/// views of in_proj's output, which the other branch holds anyway; or, in a block, neither: the residual they are
/// recomputed from, see <see cref="InputProjectionReplay"/>), x_proj's thin output [Δ_low | B | C], A, D, the Δ
/// bias and the scan's chunk states. Backward recomputes the conv output u and Δ (a depthwise conv and a rank-dt_rank
/// projection) and differentiates them, so the two sequence-sized tensors per branch that plain autograd keeps (u, saved
/// by the scan and by x_proj, and Δ) are never held across the network. This is the trade of the official
/// mamba_inner_fn with checkpoint_lvl 1 (conv1d_out and delta recomputed in backward, x_dbl kept).
/// </summary>
/// <remarks>
/// Arguments: the <see cref="BranchRun"/>, x, z, A, D, Δ bias, then the parameters the branch reads (the conv's weight
/// and bias, x_proj's and dt_proj's weights), passed so that their gradients flow through this function's graph edges,
/// and with a <see cref="BranchRun.Replay"/> the block's residual last (saved, never differentiated here: x and z carry
/// the gradient back to in_proj).
/// Results equal the plain path's bit for bit, gradients included: backward runs the same operations on the same values
/// (the recomputation under the forward's autocast settings); x_proj's backward, whose forward is not recomputed, is
/// written out as autograd's mm/bmm backward computes it (<see cref="ChannelProjectionBackward"/>); and u, the one tensor with
/// two gradient contributions (the scan's and x_proj's), adds them in one commutative sum either way.
/// </remarks>
internal sealed class MixerBranchFunction : torch.autograd.SingleTensorFunction<MixerBranchFunction>
{
    public override string Name => "VimDenseMixerBranch";

    /// <summary>How the branch computes its scan inputs (so backward can compute them again), its direction and the autocast
    /// settings of its forward.</summary>
    /// <param name="convolve">x → u = SiLU(conv(x)), float32.</param>
    /// <param name="projectX">u → x_proj's output [Δ_low | B | C] (batch, dt_rank + 2N, L), channel-major, W·u.</param>
    /// <param name="fromXProjection">x_proj's output → (Δ, B, C), float32.</param>
    /// <param name="parameters">The conv's weight and bias, x_proj's weight, dt_proj's weight, in that order.</param>
    /// <param name="replay">Where backward takes x and z from instead of keeping them (null: they are saved).</param>
    internal sealed class BranchRun(Func<Tensor, Tensor> convolve, Func<Tensor, Tensor> projectX,
        Func<Tensor, (Tensor Delta, Tensor B, Tensor C)> fromXProjection, bool reverse, Tensor[] parameters,
        InputProjectionReplay? replay = null)
    {
        public InputProjectionReplay? Replay { get; } = replay;
        public Func<Tensor, Tensor> Convolve { get; } = convolve;
        public Func<Tensor, Tensor> ProjectX { get; } = projectX;
        public Func<Tensor, (Tensor Delta, Tensor B, Tensor C)> FromXProjection { get; } = fromXProjection;
        public bool Reverse { get; } = reverse;
        public Tensor[] Parameters { get; } = parameters;
        public Tensor ConvWeight => Parameters[0];
        public Tensor ConvBias => Parameters[1];
        public Tensor XProjWeight => Parameters[2];
        public Tensor DtProjWeight => Parameters[3];
        public Autocast.Settings AutocastSettings { get; set; }
    }

    private const int ParameterStart = 6;

    /// <summary>The branch's gated scan output (batch, d_inner, L), float32. <paramref name="residual"/>: the block's, which
    /// x and z are recomputed from, exactly when the run has a <see cref="BranchRun.Replay"/>.</summary>
    public static Tensor Apply(BranchRun run, Tensor x, Tensor z, Tensor A, Tensor D, Tensor deltaBias, Tensor? residual = null)
    {
        if ((run.Replay is null) != (residual is null))
            throw new ArgumentException("MixerBranchFunction: a residual goes with an input replay, and only with one.", nameof(residual));
        var arguments = new object[ParameterStart + run.Parameters.Length + (residual is null ? 0 : 1)];
        arguments[0] = run;
        arguments[1] = x;
        arguments[2] = z;
        arguments[3] = A;
        arguments[4] = D;
        arguments[5] = deltaBias;
        for (int i = 0; i < run.Parameters.Length; i++) arguments[ParameterStart + i] = run.Parameters[i];
        if (residual is not null)
        {
            run.Replay!.Join();
            arguments[^1] = residual;
        }
        return apply(arguments);
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var run = (BranchRun)vars[0];
        Tensor x = (Tensor)vars[1], z = (Tensor)vars[2], A = (Tensor)vars[3], D = (Tensor)vars[4], deltaBias = (Tensor)vars[5];
        run.AutocastSettings = Autocast.Current();
        using var scope = NewDisposeScope();
        Tensor u, xProjection, delta, b, c;
        // The same settings with the cast cache off: a cast cached here, where autograd is off, would carry no history
        // for a later use of the same weight in this autocast region.
        using (Autocast.Reproduce(run.AutocastSettings))
        {
            u = run.Convolve(x);
            xProjection = run.ProjectX(u);
            (delta, b, c) = run.FromXProjection(xProjection);
        }
        var shape = SelectiveScanShape.Validate(u, delta, A, b, c, D, z, deltaBias);
        var output = SelectiveScanKernels.Forward(shape, Prepare(u), Prepare(delta), Prepare(A), Prepare(b), Prepare(c), Prepare(D),
            Prepare(z), Prepare(deltaBias), softplus: true, run.Reverse, saveCheckpoints: true, out var checkpoints);
        // With a replay the residual stands in for x, and z is not kept at all.
        bool keepsInputs = run.Replay is null;
        ctx.save_for_backward([keepsInputs ? x : (Tensor)vars[^1], keepsInputs ? z : null!, A, D, deltaBias, xProjection.MoveToOuterDisposeScope(),
            checkpoints!.MoveToOuterDisposeScope()]);
        ctx.save_data("run", run);
        ctx.save_data("shape", shape);
        ctx.save_data("needs", vars.Skip(1).Select(v => v is Tensor { requires_grad: true }).ToArray());
        return output.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        // Backward may run on the autograd engine's thread, which the caller's dispose scopes do not reach.
        using var scope = BackwardGradients.Begin();
        using var timed = BackwardProfiler.Region("branch");
        var run = (BranchRun)ctx.get_data("run");
        var shape = (SelectiveScanShape)ctx.get_data("shape");
        var needs = (bool[])ctx.get_data("needs");
        var saved = ctx.get_saved_variables();
        var (savedX, z) = run.Replay is { } replay ? replay.Acquire(saved[0]) : (saved[0], saved[1]);
        try
        {
            return BackwardFrom(run, shape, needs, savedX, z, saved, grad_output);
        }
        finally
        {
            run.Replay?.Release();
        }
    }

    /// <summary>Backward with the branch's inputs at hand (<paramref name="savedX"/> and <paramref name="z"/>, kept or recomputed).</summary>
    private static List<Tensor> BackwardFrom(BranchRun run, SelectiveScanShape shape, bool[] needs, Tensor savedX, Tensor z,
        IList<Tensor> saved, Tensor grad_output)
    {
        bool NeedsParameter(int i) => needs[ParameterStart - 1 + i];
        bool convNeeds = needs[0] || NeedsParameter(0) || NeedsParameter(1);
        Tensor x = savedX.detach().requires_grad_(needs[0]), A = saved[2], D = saved[3], deltaBias = saved[4];
        var xProjection = saved[5].detach().requires_grad_();
        var checkpoints = saved[6];

        Tensor u, delta, b, c;
        using (BackwardProfiler.Region("recompute_u_delta"))
        using (enable_grad())
        using (Autocast.Reproduce(run.AutocastSettings))
        {
            u = run.Convolve(x);
            (delta, b, c) = run.FromXProjection(xProjection);
        }
        SelectiveScanKernels.Gradients g;
        using (BackwardProfiler.Region("scan"))
            g = SelectiveScanKernels.Backward(shape, Prepare(u.detach()), Prepare(delta.detach()), Prepare(A), Prepare(b.detach()),
            Prepare(c.detach()), Prepare(D), Prepare(z), Prepare(deltaBias), softplus: true, run.Reverse, checkpoints,
            SelectiveScanKernels.Prepare(grad_output)!);

        var gradients = new Tensor?[ParameterStart + run.Parameters.Length + (run.Replay is null ? 0 : 1)];
        gradients[2] = needs[1] ? g.dz : null;
        gradients[3] = needs[2] ? g.dA : null;
        gradients[4] = needs[3] ? g.dD : null;
        gradients[5] = needs[4] ? g.ddeltaBias : null;

        // Δ, B and C back to x_proj's output and dt_proj's weight through their recomputation (x_proj's output is no
        // argument: its gradient goes on to x_proj's backward below).
        var projectionGradients = new Tensor?[2];
        using (BackwardProfiler.Region("dt_proj"))
            BackwardGradients.DifferentiateInto(projectionGradients, [delta, b, c],
            [g.ddelta.to_type(delta.dtype), g.dB.to_type(b.dtype), g.dC.to_type(c.dtype)],
            NeedsParameter(3) ? [(xProjection, 0), (run.DtProjWeight, 1)] : [(xProjection, 0)]);
        gradients[ParameterStart + 3] = projectionGradients[1];

        // x_proj's output back to u and its weight; then u, with the scan's own gradient, back to x and the conv.
        Tensor? du, dXProjWeight;
        using (BackwardProfiler.Region("x_proj"))
            (du, dXProjWeight) = ChannelProjectionBackward(u, run.XProjWeight, projectionGradients[0]!, convNeeds, NeedsParameter(2));
        if (dXProjWeight is not null) gradients[ParameterStart + 2] = dXProjWeight;
        if (convNeeds && du is not null)
        {
            var convTargets = new List<(Tensor Tensor, int Slot)>();
            if (needs[0]) convTargets.Add((x, 1));
            if (NeedsParameter(0)) convTargets.Add((run.ConvWeight, ParameterStart));
            if (NeedsParameter(1)) convTargets.Add((run.ConvBias, ParameterStart + 1));
            using (BackwardProfiler.Region("conv1d"))
                BackwardGradients.DifferentiateInto(gradients, [u], [du.add_(g.du.to_type(du.dtype))], convTargets);
        }
        return BackwardGradients.Return(gradients, grad_output);
    }

    /// <summary>
    /// The backward of a channel-major product P = W·u (per batch element; <c>BiMambaMixer.ProjectChannels</c>), as autograd
    /// computes it for that forward: for one image mm's dW = dP·uᵀ and du = Wᵀ·dP, the latter as (dPᵀ·W)ᵀ when u is a
    /// column-major view (in_proj's input, the transposed tokens), where libtorch's mm backward computes the gradient in
    /// its input's layout; for several, bmm's over the expanded weight, dW summed over the batch (the expand's backward).
    /// Products run in dP's type (autocast's half type under autocast, where the forward cast u and W down) and come back
    /// in u's and W's types, as the casts' backward does; the weight's gradient is cast before the batch sum, since the
    /// forward expanded the weight before casting it.
    /// </summary>
    /// <returns>du (null unless <paramref name="wantInput"/>) and dW (null unless <paramref name="wantWeight"/>).</returns>
    internal static (Tensor? du, Tensor? dWeight) ChannelProjectionBackward(Tensor u, Tensor weight, Tensor dProjection,
        bool wantInput, bool wantWeight)
    {
        var productType = dProjection.dtype;
        var uc = u.detach().to_type(productType);
        var wc = weight.detach().to_type(productType);
        long batch = u.shape[0];
        Tensor? du = null, dw = null;
        if (batch == 1)
        {
            var dp = dProjection.select(0, 0);
            var u0 = uc.select(0, 0);
            if (wantWeight) dw = dp.mm(u0.t());
            // contiguous(): the select's backward writes the product's gradient into a fresh (1, …) tensor, whose layout later
            // reductions over it (RMSNorm's backward, after in_proj) follow.
            if (wantInput)
                du = (u0.stride(0) == 1 && u0.stride(1) == u0.shape[0] ? dp.t().mm(wc).t() : wc.t().mm(dp)).contiguous().unsqueeze(0);
        }
        else
        {
            if (wantWeight) dw = dProjection.bmm(uc.transpose(1, 2)).to_type(weight.dtype).sum([0]);
            if (wantInput) du = wc.unsqueeze(0).expand(batch, -1, -1).transpose(1, 2).bmm(dProjection);
        }
        return (du?.to_type(u.dtype), dw?.to_type(weight.dtype));
    }

    /// <summary>The form the native kernels read: float32, contiguous (an alias when already so; z, a view of in_proj's
    /// output, is saved as the view and copied only while a kernel reads it).</summary>
    private static Tensor Prepare(Tensor t) => SelectiveScanKernels.Prepare(t)!;
}
