using TorchSharp;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// A Vim block's RMSNorm and the mixer's in_proj in training as one autograd function: xz = W_in · RMSNorm(residual)ᵀ,
/// keeping for backward only the residual (which the residual stream holds anyway until the next block's add) instead of
/// the normalised tokens in_proj's product would keep as well. Backward recomputes the norm, an elementwise pass, and
/// differentiates it (<see cref="RmsNormFunction"/>, with the cast to the block's activation type), after in_proj's own
/// backward written out as autograd computes it (<see cref="MixerBranchFunction.ChannelProjectionBackward"/>): the same
/// results and gradients as the block's plain path, bit for bit.
/// </summary>
/// <remarks>Arguments: the <see cref="ProjectionRun"/>, the residual (B, L, dim), the norm's weight, in_proj's weight.</remarks>
internal sealed class NormedProjectionFunction : torch.autograd.SingleTensorFunction<NormedProjectionFunction>
{
    public override string Name => "VimDenseNormedProjection";

    /// <summary>How to compute the normalised tokens (residual → RMSNorm in the block's activation type) and the product, and
    /// the two weights they read (also the function's arguments, so their gradients flow through its graph edges).</summary>
    internal sealed class ProjectionRun(Func<Tensor, Tensor> normalise, Func<Tensor, Tensor> project, Tensor normWeight, Tensor projectionWeight)
    {
        public Func<Tensor, Tensor> Normalise { get; } = normalise;
        public Func<Tensor, Tensor> Project { get; } = project;
        public Tensor NormWeight { get; } = normWeight;
        public Tensor ProjectionWeight { get; } = projectionWeight;
        public Autocast.Settings AutocastSettings { get; set; }

        /// <summary>xz from <paramref name="residual"/> as the forward computes it, under its autocast settings with the cast
        /// cache off (a cast cached where autograd is off would carry no history); autograd as the caller has it.</summary>
        public Tensor OutputOf(Tensor residual)
        {
            using (Autocast.Reproduce(AutocastSettings))
                return Project(Normalise(residual).transpose(1, 2));
        }
    }

    /// <summary>xz (B, 2·d_inner, L).</summary>
    public static Tensor Apply(ProjectionRun run, Tensor residual) => apply(run, residual, run.NormWeight, run.ProjectionWeight);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var run = (ProjectionRun)vars[0];
        Tensor residual = (Tensor)vars[1], normWeight = (Tensor)vars[2], projectionWeight = (Tensor)vars[3];
        run.AutocastSettings = Autocast.Current();
        using var scope = NewDisposeScope();
        var xz = run.OutputOf(residual);
        ctx.save_for_backward([residual]);
        ctx.save_data("run", run);
        ctx.save_data("needs", new[] { residual.requires_grad, normWeight.requires_grad, projectionWeight.requires_grad });
        return xz.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = BackwardGradients.Begin();
        using var timed = BackwardProfiler.Region("rms_norm+in_proj");
        var run = (ProjectionRun)ctx.get_data("run");
        var needs = (bool[])ctx.get_data("needs");
        Tensor normWeight = run.NormWeight, projectionWeight = run.ProjectionWeight;
        var residual = ctx.get_saved_variables()[0].detach().requires_grad_(needs[0]);
        bool normNeeds = needs[0] || needs[1];

        Tensor normed;
        using (enable_grad())
        using (Autocast.Reproduce(run.AutocastSettings))
            normed = run.Normalise(residual);
        var (dNormedT, dProjectionWeight) = MixerBranchFunction.ChannelProjectionBackward(normed.transpose(1, 2), projectionWeight,
            grad_output, wantInput: normNeeds, wantWeight: needs[2]);

        var gradients = new Tensor?[4];
        gradients[3] = dProjectionWeight;
        if (normNeeds && normed.requires_grad)
        {
            var targets = new List<(Tensor Tensor, int Slot)>();
            if (needs[0]) targets.Add((residual, 1));
            if (needs[1]) targets.Add((normWeight, 2));
            BackwardGradients.DifferentiateInto(gradients, [normed], [dNormedT!.transpose(1, 2)], targets);
        }
        return BackwardGradients.Return(gradients, grad_output);
    }
}
