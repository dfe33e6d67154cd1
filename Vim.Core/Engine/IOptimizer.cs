using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// Our optimisers keep every piece of state as named tensors we own, so a checkpoint can hold it
/// and a resumed run continues bit-for-bit.
/// </summary>
public interface IOptimizer : IDisposable
{
    IReadOnlyList<ParameterGroup> Groups { get; }

    /// <summary>Number of steps taken.</summary>
    long StepCount { get; }

    /// <summary>One update; each group uses the learning rate <paramref name="groupLr"/> gives for its LrScale (layer-wise
    /// decay), so a schedule's floor (min_lr) applies to each group's own lr, as mmcv computes it per group.
    /// <paramref name="momentum"/>: this step's SGD momentum or Adam beta1 where a momentum scheduler sets it (null: the
    /// optimiser's own), as MMEngine's momentum schedulers write it into every param group before the step.</summary>
    void Step(Func<double, double> groupLr, double? momentum = null);

    /// <summary>The learning rate each group took at the last <see cref="Step"/>, in <see cref="Groups"/> order (torch's
    /// param_groups[i]["lr"]); NaN before the first step.</summary>
    IReadOnlyList<double> GroupLrs { get; }

    void ZeroGrad();

    /// <summary>The optimiser state, keyed "&lt;slot&gt;/&lt;parameter name&gt;" (e.g. exp_avg/layers.0.mixer.A_log).</summary>
    IReadOnlyDictionary<string, Tensor> StateTensors();

    /// <summary>Restores state written by <see cref="StateTensors"/>; every slot must be present with the right shape.</summary>
    void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount);
}
