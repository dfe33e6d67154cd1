using TorchSharp;
using Vim.Core.Diagnostics;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Vim's pre-norm block in "Add → Norm → Mixer" form: residual ← residual + DropPath(hidden) (or the
/// input itself for the first block), hidden ← Mixer(RMSNorm(residual)). Returns (hidden, residual);
/// the mixer output is added at the start of the next block (or by the model's final add).
/// </summary>
public sealed class MambaBlock : nn.Module<Tensor, Tensor?, (Tensor Hidden, Tensor Residual)>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly BiMambaMixer mixer;
    private readonly RmsNorm norm;
    private readonly DropPath drop_path;
#pragma warning restore IDE1006

    public bool ResidualInFp32 { get; }

    public MambaBlock(BiMambaMixer mixer, RmsNorm norm, double dropPathRate, bool residualInFp32) : base(nameof(MambaBlock))
    {
        this.mixer = mixer;
        this.norm = norm;
        drop_path = new DropPath(dropPathRate);
        ResidualInFp32 = residualInFp32;
        RegisterComponents();
    }

    public BiMambaMixer Mixer => mixer;
    public double DropPathRate => drop_path.Rate;

    public override (Tensor Hidden, Tensor Residual) forward(Tensor hidden, Tensor? residual)
    {
        using var scope = NewDisposeScope();
        Tensor newResidual;
        using (StageProfiler.Measure("residual_add"))
        {
            newResidual = residual is null ? hidden.alias() : residual + drop_path.call(hidden);
            // Half-precision residuals are promoted; fp32/fp64 ones are already at least fp32.
            if (ResidualInFp32 && newResidual.dtype is ScalarType.Float16 or ScalarType.BFloat16) newResidual = newResidual.to_type(ScalarType.Float32);
        }
        // The norm goes with the mixer, so that in training it can keep the residual alone for backward.
        var newHidden = mixer.ForwardNormed(newResidual, norm, hidden.dtype);
        return (newHidden.MoveToOuterDisposeScope(), newResidual.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Inference form (eval mode, no autograd, float32 CPU): residual ← residual + hidden (or, for the
    /// first block, residual already holds the input), then hidden ← Mixer(RMSNorm(residual)), both
    /// updated in place in the workspace's buffers.
    /// </summary>
    internal void ForwardInPlace(Tensor hidden, Tensor residual, bool first, MambaInferenceWorkspace workspace)
    {
        using var scope = NewDisposeScope();
        using var counted = FlopCounter.Within(this);
        if (!first)
            using (StageProfiler.Measure("residual_add"))
                residual.add_(hidden);
        var normed = workspace.Get("normed", residual.shape);
        using (StageProfiler.Measure("rms_norm"))
            norm.ForwardInto(residual, normed);
        mixer.ForwardInto(normed, hidden, workspace);
    }
}
