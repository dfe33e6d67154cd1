using Vim.Core.Diagnostics;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// in_proj's output of one block in training, recomputed in backward instead of kept from the forward: the block's two
/// mixer branches (<see cref="MixerBranchFunction"/>) read their x and z from it. The first branch whose backward runs
/// recomputes xz from the residual (RMSNorm and in_proj again, autograd off, under the forward's autocast settings:
/// the same bits the forward produced) and both share the x and z split from it; the last to finish frees them. So a block holds 2 × d_inner
/// floats per token less across the network, for one more in_proj product per block in backward, and holds them again
/// only while its own branches run backward.
/// </summary>
/// <remarks>
/// The residual comes from each branch's saved tensors (it is also <see cref="NormedProjectionFunction"/>'s, the same
/// storage), so this object owns nothing between forward and backward. Each branch that takes part registers in its
/// forward (<see cref="Join"/>) and calls <see cref="Acquire"/> and then <see cref="Release"/> once in its backward.
/// </remarks>
internal sealed class InputProjectionReplay(NormedProjectionFunction.ProjectionRun projection, Func<Tensor, (Tensor X, Tensor Z)> split)
{
    private readonly object _gate = new();
    private int _users;
    private (Tensor X, Tensor Z)? _inputs;

    /// <summary>Counts one more branch that will read the recomputed inputs in its backward.</summary>
    public void Join()
    {
        lock (_gate) _users++;
    }

    /// <summary>The branches' x and z (as the forward's <paramref name="split"/> gave them), recomputed on first use.</summary>
    public (Tensor X, Tensor Z) Acquire(Tensor residual)
    {
        lock (_gate)
        {
            if (_inputs is null)
            {
                // x and z kept beyond the calling backward's scope until the last branch releases them; xz itself goes with
                // the scope (x and z are views of its storage, or widened copies under autocast).
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                using var timed = BackwardProfiler.Region("in_proj_replay");
                var (x, z) = split(projection.OutputOf(residual.detach()));
                _inputs = (x.DetachFromDisposeScope(), z.DetachFromDisposeScope());
            }
            return _inputs.Value;
        }
    }

    /// <summary>One branch is done with the inputs; the last one frees them.</summary>
    public void Release()
    {
        lock (_gate)
        {
            if (--_users > 0 || _inputs is not { } inputs) return;
            inputs.X.Dispose();
            inputs.Z.Dispose();
            _inputs = null;
        }
    }
}
