using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>Restoring named optimiser slots, with errors that name the missing or mismatched slot.</summary>
internal static class OptimizerState
{
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
