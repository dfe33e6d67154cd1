using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>Dropping the gradients of parameters between steps, as every training loop here does.</summary>
public static class ParameterGradients
{
    /// <summary>
    /// Sets every gradient to none (torch's zero_grad(set_to_none=True), its default since 2.0) rather than filling it
    /// with zeros: the memory is freed, and a parameter the next backward does not reach keeps none.
    /// </summary>
    public static void Drop(IEnumerable<Parameter> parameters)
    {
        foreach (var p in parameters)
        {
            // Each access of .grad makes a new wrapper; the scope disposes it.
            using var scope = NewDisposeScope();
            if (p.grad is not null) p.grad = null;
        }
    }
}
