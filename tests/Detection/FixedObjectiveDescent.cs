using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// Gradient descent on one objective that stays fixed between steps (its sampling seeded alike every call), as the
/// detection tests check that a loss can be lowered at all.
/// </summary>
internal static class FixedObjectiveDescent
{
    /// <summary>The objective before the steps and after <paramref name="steps"/> optimiser steps on it.</summary>
    public static (double Before, double After) Run(optim.Optimizer optimizer, Func<Tensor> objective, int steps)
    {
        double Step(bool update)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = objective();
            if (update)
            {
                loss.backward();
                optimizer.step();
            }
            return loss.ToDouble();
        }
        double before = Step(update: false);
        for (int i = 0; i < steps; i++) Step(update: true);
        return (before, Step(update: false));
    }
}
