namespace Vim.Core.Engine;

/// <summary>How a training run ended.</summary>
/// <param name="Length">The run's length as the trainer resolved it (an epoch-counted run's in iterations, with its epoch).</param>
/// <param name="EarlyStop">Why train.early_stopping ended the run before schedule.max_iters; null when it did not.</param>
public sealed record TrainingResult(int Iteration, bool Interrupted, double? BestMetric, string? LastCheckpoint, int SkippedSteps, TrainingLength Length,
    EarlyStop? EarlyStop = null);
