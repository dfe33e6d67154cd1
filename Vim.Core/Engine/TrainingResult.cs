namespace Vim.Core.Engine;

/// <summary>How a training run ended.</summary>
/// <param name="EarlyStop">Why train.early_stopping ended the run before schedule.max_iters; null when it did not.</param>
public sealed record TrainingResult(int Iteration, bool Interrupted, double? BestMetric, string? LastCheckpoint, int SkippedSteps, EarlyStop? EarlyStop = null);
