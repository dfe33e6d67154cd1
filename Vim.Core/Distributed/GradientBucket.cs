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
        _usedOffset = offset;
        // One more value per member after the gradients: 1 where this rank has its gradient. After the all-reduce a
        // member whose value is 0 was used by no rank, and keeps no gradient (torch DDP leaves globally unused
        // parameters' gradients untouched), so the optimiser leaves it alone as it does in one process, instead of
        // applying weight decay to it because of a gradient of zeros.
        Flat = zeros(offset + parameters.Count, dtype: ScalarType.Float32, device: device ?? CPU);
    }

    private readonly long _usedOffset;

    /// <summary>The gradients of every member, end to end, in member order, then a per-member flag (1: this rank has its gradient).</summary>
    public Tensor Flat { get; }

    public IReadOnlyList<string> Names => _members.Select(m => m.Name).ToList();

    /// <summary>Gradient values the bucket carries (its members' elements).</summary>
    public long GradientElements => _usedOffset;

    /// <summary>Bytes one all-reduce of the bucket moves (gradients and flags).</summary>
    public long Bytes => Flat.NumberOfElements * 4;

    /// <summary>Copies each member's gradient into <see cref="Flat"/>; a parameter without a gradient (unused in this forward) contributes zeros.</summary>
    public void Flatten()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var used = new float[_members.Length];
        for (int i = 0; i < _members.Length; i++)
        {
            var (_, parameter, offset) = _members[i];
            var slice = Flat.narrow(0, offset, parameter.NumberOfElements);
            if (parameter.grad is { } grad)
            {
                slice.copy_(grad.reshape(-1));
                used[i] = 1;
            }
            else slice.zero_();
        }
        Flat.narrow(0, _usedOffset, _members.Length).copy_(tensor(used));
    }

    /// <summary>
    /// Copies <see cref="Flat"/> back into each member's gradient, creating it where backward left none on this rank but
    /// another rank used the parameter; a parameter no rank used keeps no gradient.
    /// </summary>
    public void Unflatten()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var usedAnywhere = Flat.narrow(0, _usedOffset, _members.Length).cpu().data<float>().ToArray();
        for (int i = 0; i < _members.Length; i++)
        {
            var (_, parameter, offset) = _members[i];
            if (usedAnywhere[i] == 0) continue;
            var slice = Flat.narrow(0, offset, parameter.NumberOfElements).view(parameter.shape);
            if (parameter.grad is { } grad) grad.copy_(slice);
            else parameter.grad = slice.clone().MoveToOuterDisposeScope();
        }
    }

    public void Dispose() => Flat.Dispose();
}
