using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>What our optimisers share: zeroing gradients and restoring named slots (errors name the slot).</summary>
internal static class OptimizerState
{
    /// <summary>
    /// Drops every gradient (torch's zero_grad(set_to_none=True), its default since 2.0): a parameter the next steps do
    /// not reach has none, so the optimiser leaves it alone, and whether a gradient exists depends only on the current
    /// accumulation window, as in a run resumed from a checkpoint (data parallelism's used-parameter flags rely on it).
    /// </summary>
    public static void ZeroGrad(IEnumerable<ParameterGroup> groups) =>
        ParameterGradients.Drop(groups.SelectMany(g => g.Parameters).Select(p => p.Parameter));

    public static void CopyInto(IReadOnlyDictionary<string, Tensor> state, string slot, Dictionary<string, Tensor> target)
    {
        using var noGrad = no_grad();
        foreach (var (name, tensor) in target)
        {
            var key = $"{slot}/{name}";
            if (!state.TryGetValue(key, out var saved))
                throw new VimException($"optimiser state: missing '{key}' (the checkpoint was written for another model or optimiser)");
            if (!saved.shape.SequenceEqual(tensor.shape))
                throw new VimException($"optimiser state: '{key}' has shape [{string.Join(", ", saved.shape)}], expected [{string.Join(", ", tensor.shape)}]");
            tensor.copy_(saved);
        }
    }
}
