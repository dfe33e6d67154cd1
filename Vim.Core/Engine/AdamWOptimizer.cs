using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>AdamW with decoupled weight decay, identical in arithmetic to torch.optim.AdamW (amsgrad off).</summary>
public sealed class AdamWOptimizer : IOptimizer
{
    private readonly double _beta1, _beta2, _eps;
    private readonly Dictionary<string, Tensor> _expAvg = new(), _expAvgSq = new();
    private readonly double[] _groupLrs;

    public AdamWOptimizer(IReadOnlyList<ParameterGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        Groups = groups;
        _groupLrs = Enumerable.Repeat(double.NaN, groups.Count).ToArray();
        (_beta1, _beta2, _eps) = (beta1, beta2, eps);
        foreach (var (name, p) in groups.SelectMany(g => g.Parameters))
        {
            _expAvg[name] = zeros_like(p).DetachFromDisposeScope();
            _expAvgSq[name] = zeros_like(p).DetachFromDisposeScope();
        }
    }

    public IReadOnlyList<ParameterGroup> Groups { get; }

    public IReadOnlyList<double> GroupLrs => _groupLrs;

    public long StepCount { get; private set; }

    public void Step(Func<double, double> groupLr, double? momentum = null)
    {
        StepCount++;
        // A scheduled beta1 enters the bias correction at its current value to the power of the step, as torch.optim.AdamW's
        // does (1 − beta1^step with the group's beta1 of this step), not as a product of the past betas.
        double beta1 = momentum ?? _beta1;
        double bias1 = 1 - Math.Pow(beta1, StepCount);
        double bias2Sqrt = Math.Sqrt(1 - Math.Pow(_beta2, StepCount));
        using var noGrad = no_grad();
        var fused = FusedOptimizerStep.Enabled ? new FusedOptimizerStep.Batch() : null;
        for (int g = 0; g < Groups.Count; g++)
        {
            var group = Groups[g];
            double lr = _groupLrs[g] = groupLr(group.LrScale);
            foreach (var (name, p) in group.Parameters)
            {
                using var scope = NewDisposeScope();
                var grad = p.grad;
                if (grad is null) continue;
                var m = _expAvg[name];
                var v = _expAvgSq[name];
                if (fused?.TryAdd(p, grad, m, v, lr, group.WeightDecay) == true) continue;
                if (group.WeightDecay != 0) p.mul_(1 - lr * group.WeightDecay);
                m.mul_(beta1).add_(grad, alpha: 1 - beta1);
                v.mul_(_beta2).addcmul_(grad, grad, value: 1 - _beta2);
                var denom = v.sqrt().div_(bias2Sqrt).add_(_eps);
                p.addcdiv_(m, denom, value: -lr / bias1);
            }
        }
        fused?.AdamW(beta1, _beta2, _eps, StepCount);
    }

    public void ZeroGrad() => OptimizerState.ZeroGrad(Groups);

    public IReadOnlyDictionary<string, Tensor> StateTensors()
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, t) in _expAvg) state[$"exp_avg/{name}"] = t;
        foreach (var (name, t) in _expAvgSq) state[$"exp_avg_sq/{name}"] = t;
        return state;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        OptimizerState.CopyInto(state, "exp_avg", _expAvg);
        OptimizerState.CopyInto(state, "exp_avg_sq", _expAvgSq);
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var t in _expAvg.Values.Concat(_expAvgSq.Values)) t.Dispose();
    }
}
