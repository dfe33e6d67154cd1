using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// Puts a module in eval mode for the length of a <c>using</c> block and restores the mode it had, so a caller's model that
/// is training (e.g. a detector evaluated between training iterations) goes back to training after a prediction.
/// </summary>
public readonly struct EvalMode : IDisposable
{
    private readonly nn.Module? _module;

    private EvalMode(nn.Module module) => _module = module;

    /// <summary>Switches <paramref name="module"/> to eval mode until the returned value is disposed.</summary>
    public static EvalMode Enter(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (!module.training) return default;
        module.eval();
        return new EvalMode(module);
    }

    public void Dispose() => _module?.train();
}
