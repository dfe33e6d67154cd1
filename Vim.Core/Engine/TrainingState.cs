namespace Vim.Core.Engine;

/// <summary>The non-tensor part of a training checkpoint.</summary>
/// <param name="Iteration">Iterations completed.</param>
/// <param name="OptimizerSteps">Optimiser updates taken (differs from iterations with gradient accumulation).</param>
/// <param name="Data">Position of the next training batch.</param>
/// <param name="BestMetric">Best value of the primary metric so far, if evaluated.</param>
/// <param name="ConfigYaml">The merged config the run was started with.</param>
/// <param name="LossScale">The fp16 loss scaler's progress, for runs that scale the loss.</param>
/// <param name="GeneratorRanks">
/// How many ranks' torch generator states the checkpoint holds: K for a K-rank run with runtime.diff_rank_seed (each rank's
/// own), otherwise 1 (rank 0's, which every rank shares).
/// </param>
/// <param name="EarlyStopping">train.early_stopping's best value and count, for runs that stop early; null for others and for checkpoints written before it.</param>
public sealed record TrainingState(int Iteration, long OptimizerSteps, DataPosition Data, double? BestMetric, string ConfigYaml,
    LossScaleState? LossScale = null, int GeneratorRanks = 1, EarlyStoppingState? EarlyStopping = null,
    IReadOnlyDictionary<int, PlateauState>? Plateaus = null, bool EvaluatesEma = false);
