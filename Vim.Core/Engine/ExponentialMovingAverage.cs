using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// An exponential moving average of a model's floating-point parameters and buffers
/// (ema = decay·ema + (1 − decay)·current); integer buffers are copied. Kept as named tensors so
/// checkpoints can hold it and evaluation can swap it in.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    private readonly Dictionary<string, Tensor> _shadow = new();

    public ExponentialMovingAverage(nn.Module model, double decay)
    {
        if (decay is <= 0 or >= 1) throw new VimException($"train.ema_momentum must be in (0, 1), got {decay}");
        Decay = decay;
        using var noGrad = no_grad();
        foreach (var (name, t) in model.state_dict()) _shadow[name] = t.detach().clone().DetachFromDisposeScope();
    }

    public double Decay { get; }

    public IReadOnlyDictionary<string, Tensor> Shadow => _shadow;

    public void Update(nn.Module model)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (name, current) in model.state_dict())
        {
            var shadow = _shadow[name];
            if (shadow.is_floating_point()) shadow.mul_(Decay).add_(current, alpha: 1 - Decay);
            else shadow.copy_(current);
        }
    }

    public void Dispose()
    {
        foreach (var t in _shadow.Values) t.Dispose();
    }
}
