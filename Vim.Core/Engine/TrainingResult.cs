namespace Vim.Core.Engine;

/// <summary>How a training run ended.</summary>
public sealed record TrainingResult(int Iteration, bool Interrupted, double? BestMetric, string? LastCheckpoint, int SkippedSteps);
