namespace Vim.Core.Engine;

/// <summary>The non-tensor part of a training checkpoint.</summary>
/// <param name="Iteration">Iterations completed.</param>
/// <param name="OptimizerSteps">Optimiser updates taken (differs from iterations with gradient accumulation).</param>
/// <param name="Data">Position of the next training batch.</param>
/// <param name="BestMetric">Best value of the primary metric so far, if evaluated.</param>
/// <param name="ConfigYaml">The merged config the run was started with.</param>
/// <param name="LossScale">The fp16 loss scaler's progress, for runs that scale the loss.</param>
public sealed record TrainingState(int Iteration, long OptimizerSteps, DataPosition Data, double? BestMetric, string ConfigYaml,
    LossScaleState? LossScale = null);
