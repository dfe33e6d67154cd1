using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>SGD with momentum and L2 weight decay, identical in arithmetic to torch.optim.SGD (no dampening, not Nesterov).</summary>
public sealed class SgdOptimizer : IOptimizer
{
    private readonly double _momentum;
    private readonly Dictionary<string, Tensor> _momentumBuffer = new();
    private readonly double[] _groupLrs;

    public SgdOptimizer(IReadOnlyList<ParameterGroup> groups, double momentum = 0.9)
    {
        Groups = groups;
        _groupLrs = Enumerable.Repeat(double.NaN, groups.Count).ToArray();
        _momentum = momentum;
        foreach (var (name, p) in groups.SelectMany(g => g.Parameters))
            _momentumBuffer[name] = zeros_like(p).DetachFromDisposeScope();
    }

    public IReadOnlyList<ParameterGroup> Groups { get; }

    public IReadOnlyList<double> GroupLrs => _groupLrs;

    public long StepCount { get; private set; }

    public void Step(Func<double, double> groupLr, double? momentum = null)
    {
        StepCount++;
        double stepMomentum = momentum ?? _momentum;
        using var noGrad = no_grad();
        var fused = FusedOptimizerStep.InUse ? new FusedOptimizerStep.Batch() : null;
        for (int g = 0; g < Groups.Count; g++)
        {
            var group = Groups[g];
            double lr = _groupLrs[g] = groupLr(group.LrScale);
            foreach (var (name, p) in group.Parameters)
            {
                using var scope = NewDisposeScope();
                var grad = p.grad;
                if (grad is null) continue;
                if (fused?.TryAddSgd(p, grad, stepMomentum != 0 ? _momentumBuffer[name] : null, lr, group.WeightDecay) == true) continue;
                var d = group.WeightDecay != 0 ? grad.add(p, alpha: group.WeightDecay) : grad;
                if (stepMomentum != 0)
                {
                    var buffer = _momentumBuffer[name];
                    // PyTorch initialises the buffer with the first gradient rather than decaying zeros. A parameter whose
                    // first gradient comes later gets 0·momentum + d = d from its zero buffer, the same value.
                    if (StepCount == 1) buffer.copy_(d);
                    else buffer.mul_(stepMomentum).add_(d);
                    d = buffer;
                }
                p.add_(d, alpha: -lr);
            }
        }
        fused?.Sgd(stepMomentum, firstStep: StepCount == 1);
    }

    public void ZeroGrad() => OptimizerState.ZeroGrad(Groups);

    public IReadOnlyDictionary<string, Tensor> StateTensors() =>
        _momentumBuffer.ToDictionary(kv => $"momentum_buffer/{kv.Key}", kv => kv.Value);

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        OptimizerState.CopyInto(state, "momentum_buffer", _momentumBuffer);
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var t in _momentumBuffer.Values) t.Dispose();
    }
}
