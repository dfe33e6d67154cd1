using TorchSharp;
using static TorchSharp.torch;
using Vim.Core.Native;

namespace Vim.Core.Engine;

/// <summary>
/// An exponential moving average of a model's floating-point parameters and buffers
/// (ema = decay·ema + (1 − decay)·current); integer buffers are copied. Kept as named tensors so
/// checkpoints can hold it and evaluation can swap it in.
/// </summary>
/// <remarks>
/// Buffers are averaged as MMEngine's averaged model does with update_buffers=True (timm's ModelEma alike); MMEngine's
/// default leaves them out of the average and validates with the trained model's buffers. Our backbones and the detector
/// normalise with LayerNorm/RMSNorm, which hold none; the segmentor's BatchNorm layers (the neck's fpn1 and the UperNet and
/// FCN heads' ConvBnRelu) do, so there the average's running statistics are evaluated with the averaged weights.
/// </remarks>
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

    /// <summary>
    /// The optimiser steps of iterations up to this one (counted from 1) copy the model instead of averaging it
    /// (train.ema_begin_iter, <see cref="Config.TrainConfig.EmaBeginIter"/>). 0: every step averages, from the weights the run
    /// started with.
    /// </summary>
    public int CopiesThrough { get; set; }

    public IReadOnlyDictionary<string, Tensor> Shadow => _shadow;

    /// <summary>The update after the optimiser step of iteration <paramref name="iterationsDone"/> (counted from 1).</summary>
    public void Step(nn.Module model, int iterationsDone)
    {
        if (iterationsDone <= CopiesThrough) CopyFrom(model);
        else Update(model);
    }

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

    public void CopyFrom(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var (name, current) in model.state_dict()) _shadow[name].copy_(current);
    }

    /// <summary>
    /// Exchanges the average and the model's weights in place, tensor by tensor (one tensor's copy at a time, not a second
    /// model), as MMEngine's EMAHook does around validation: a second call restores both to the bit, so the optimiser goes
    /// on stepping the trained weights.
    /// </summary>
    public void SwapWith(nn.Module model)
    {
        using var noGrad = no_grad();
        // A weight shared between modules appears in the state dict under each name: swapped twice it would end up holding
        // the average, so its later names only take the trained values the first name's average now holds.
        var swappedUnder = new Dictionary<IntPtr, string>();
        foreach (var (name, current) in model.state_dict())
        {
            using var scope = NewDisposeScope();
            var shadow = _shadow[name];
            var memory = TensorMemory.Of(current);
            if (current.NumberOfElements > 0 && swappedUnder.TryGetValue(memory, out var first))
            {
                shadow.copy_(_shadow[first]);
                continue;
            }
            swappedUnder[memory] = name;
            var trained = current.clone();
            current.copy_(shadow);
            shadow.copy_(trained);
        }
    }

    public void Dispose()
    {
        foreach (var t in _shadow.Values) t.Dispose();
    }
}
