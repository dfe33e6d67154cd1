using Vim.Core.Config;

namespace Vim.Core.Engine;

/// <summary>Maps the optimizer config section to an optimiser over the given groups.</summary>
public static class OptimizerFactory
{
    public static IOptimizer Create(OptimizerConfig config, IReadOnlyList<ParameterGroup> groups) => config.Type switch
    {
        OptimizerKind.AdamW when config.Betas.Count != 2 =>
            throw new VimException($"optimizer.betas must hold two numbers, got {config.Betas.Count}"),
        OptimizerKind.AdamW => new AdamWOptimizer(groups, config.Betas[0], config.Betas[1]),
        OptimizerKind.Sgd => new SgdOptimizer(groups, config.Momentum),
        _ => throw new VimException($"optimizer.type {config.Type} is not supported"),
    };

    /// <summary>
    /// The value a momentum scheduler starts from: SGD's momentum, or AdamW's betas[0] (MMEngine's MomentumSchedulerMixin
    /// schedules betas[0] for the Adam family and leaves betas[1]).
    /// </summary>
    public static double InitialMomentum(OptimizerConfig config) => config.Type == OptimizerKind.Sgd ? config.Momentum : config.Betas[0];
}
