using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>
/// Parameters whose gradients travel together as one flat float32 buffer, so one all-reduce of a
/// few megabytes replaces many small ones (whose per-call latency would dominate).
/// </summary>
public sealed class GradientBucket : IDisposable
{
    private readonly (string Name, Parameter Parameter, long Offset)[] _members;

    /// <param name="device">Where the flat buffer lives: the parameters' device when the communicator reduces
    /// there, else the CPU (the gradients are then staged through host memory); default CPU.</param>
    public GradientBucket(IReadOnlyList<(string Name, Parameter Parameter)> parameters, Device? device = null)
    {
        if (parameters.Count == 0) throw new ArgumentException("a gradient bucket needs at least one parameter", nameof(parameters));
        long offset = 0;
        _members = new (string, Parameter, long)[parameters.Count];
        var first = parameters[0].Parameter.device;
        for (int i = 0; i < parameters.Count; i++)
        {
            var (name, parameter) = parameters[i];
            if (parameter.dtype != ScalarType.Float32)
                throw new VimException($"data-parallel training averages float32 gradients; parameter '{name}' is {parameter.dtype}");
            if (parameter.device_type != first.type || parameter.device_index != first.index)
                throw new VimException($"data-parallel training needs the whole model on one device; parameter '{name}' is on {parameter.device}, '{parameters[0].Name}' on {first}");
            _members[i] = (name, parameter, offset);
            offset += parameter.NumberOfElements;
        }
        Flat = zeros(offset, dtype: ScalarType.Float32, device: device ?? CPU);
    }

    /// <summary>The gradients of every member, end to end, in member order.</summary>
    public Tensor Flat { get; }

    public IReadOnlyList<string> Names => _members.Select(m => m.Name).ToList();

    public long Bytes => Flat.NumberOfElements * 4;

    /// <summary>Copies each member's gradient into <see cref="Flat"/>; a parameter without a gradient (unused in this forward) contributes zeros.</summary>
    public void Flatten()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (_, parameter, offset) in _members)
        {
            var slice = Flat.narrow(0, offset, parameter.NumberOfElements);
            if (parameter.grad is { } grad) slice.copy_(grad.reshape(-1));
            else slice.zero_();
        }
    }

    /// <summary>Copies <see cref="Flat"/> back into each member's gradient (creating it where backward left none).</summary>
    public void Unflatten()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (_, parameter, offset) in _members)
        {
            var slice = Flat.narrow(0, offset, parameter.NumberOfElements).view(parameter.shape);
            if (parameter.grad is { } grad) grad.copy_(slice);
            else parameter.grad = slice.clone().MoveToOuterDisposeScope();
        }
    }

    public void Dispose() => Flat.Dispose();
}
