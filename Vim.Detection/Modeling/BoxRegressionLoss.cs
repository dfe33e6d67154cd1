using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>Box-regression losses on deltas, summed over all elements (callers normalise).</summary>
public static class BoxRegressionLoss
{
    /// <summary>
    /// Smooth L1 (Huber with slope 1): 0.5·d²/β where |d| &lt; β, |d| − 0.5·β elsewhere; β = 0 is
    /// plain L1 (Detectron2's smooth_l1_loss convention, the RPN default).
    /// </summary>
    public static Tensor SmoothL1Sum(Tensor input, Tensor target, double beta)
    {
        if (beta < 0)
            throw new ArgumentException($"BoxRegressionLoss: smooth-L1 beta must be >= 0, got {beta}.", nameof(beta));
        using var scope = NewDisposeScope();
        var diff = (input - target).abs();
        var loss = beta < 1e-5 ? diff : where(diff.lt(beta), 0.5 * diff * diff / beta, diff - 0.5 * beta);
        return loss.sum().MoveToOuterDisposeScope();
    }
}
