using System.Globalization;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// One AdamW update's scalars for one parameter, in double as torch.optim.AdamW computes them: the decoupled decay
/// factor 1 − lr·wd (exactly 1 without weight decay), the step size −lr / (1 − beta1^t) and √(1 − beta2^t), with t the
/// parameter's own step. Both the TorchSharp ops and the fused step take them from here, so both round the same doubles.
/// </summary>
public readonly record struct AdamWStepScalars(double Decay, double StepSize, double Bias2Sqrt)
{
    /// <summary>A scheduled beta1 enters the bias correction at its current value to the power of the step, as
    /// torch.optim.AdamW's does (1 − beta1^t with the group's beta1 of this step), not as a product of the past betas.</summary>
    public static AdamWStepScalars For(double lr, double weightDecay, double beta1, double beta2, long step) =>
        new(weightDecay != 0 ? 1 - lr * weightDecay : 1,
            -lr / (1 - Math.Pow(beta1, step)),
            Math.Sqrt(1 - Math.Pow(beta2, step)));
}

/// <summary>AdamW with decoupled weight decay, torch.optim.AdamW's formula (amsgrad off; the first moment as
/// mul_(β1).add_(g, 1−β1) where torch writes lerp_, equal up to float rounding), including its
/// per-parameter step count (state["step"]): a parameter counts only the steps in which it had a gradient, so one that
/// first gets a gradient late starts its bias correction at 1.</summary>
public sealed class AdamWOptimizer : IOptimizer
{
    private const string StepSlot = "step";
    private readonly double _beta1, _beta2, _eps;
    private readonly Dictionary<string, Tensor> _expAvg = new(), _expAvgSq = new();
    private readonly Dictionary<string, long> _steps = new();
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
            _steps[name] = 0;
        }
    }

    public IReadOnlyList<ParameterGroup> Groups { get; }

    public IReadOnlyList<double> GroupLrs => _groupLrs;

    public long StepCount { get; private set; }

    /// <summary>The steps <paramref name="parameterName"/> has taken (torch's state["step"]).</summary>
    public long ParameterStepCount(string parameterName) => _steps[parameterName];

    public void Step(Func<double, double> groupLr, double? momentum = null)
    {
        StepCount++;
        double beta1 = momentum ?? _beta1;
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
                var scalars = AdamWStepScalars.For(lr, group.WeightDecay, beta1, _beta2, ++_steps[name]);
                var m = _expAvg[name];
                var v = _expAvgSq[name];
                if (fused?.TryAddAdamW(p, grad, m, v, scalars) == true) continue;
                if (group.WeightDecay != 0) p.mul_(scalars.Decay);
                m.mul_(beta1).add_(grad, alpha: 1 - beta1);
                v.mul_(_beta2).addcmul_(grad, grad, value: 1 - _beta2);
                var denom = v.sqrt().div_(scalars.Bias2Sqrt).add_(_eps);
                p.addcdiv_(m, denom, value: scalars.StepSize);
            }
        }
        fused?.AdamW(beta1, _beta2, _eps);
    }

    public void ZeroGrad() => OptimizerState.ZeroGrad(Groups);

    /// <summary>The moments, and each parameter's step count as a 0-dim int64 tensor under "step/…" (made by this call,
    /// in the caller's dispose scope: the counts live in a dictionary, so a step updates no tensor for them).</summary>
    public IReadOnlyDictionary<string, Tensor> StateTensors()
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, t) in _expAvg) state[$"exp_avg/{name}"] = t;
        foreach (var (name, t) in _expAvgSq) state[$"exp_avg_sq/{name}"] = t;
        foreach (var (name, steps) in _steps)
            state[$"{StepSlot}/{name}"] = tensor(steps, dtype: ScalarType.Int64, device: CPU);
        return state;
    }

    /// <summary>Restores the moments and the per-parameter steps. A checkpoint written before steps were counted per
    /// parameter has no "step/…" entries: every parameter then resumes at the global count, as those runs stepped them.</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        OptimizerState.CopyInto(state, "exp_avg", _expAvg);
        OptimizerState.CopyInto(state, "exp_avg_sq", _expAvgSq);
        bool perParameter = state.Keys.Any(k => k.StartsWith(StepSlot + "/", StringComparison.Ordinal));
        foreach (var name in _steps.Keys.ToList())
        {
            if (!perParameter)
            {
                _steps[name] = stepCount;
                continue;
            }
            var key = $"{StepSlot}/{name}";
            if (!state.TryGetValue(key, out var saved))
                throw new VimException($"optimiser state: missing '{key}' (the checkpoint was written for another model or optimiser)");
            if (saved.numel() != 1 || saved.dtype != ScalarType.Int64)
                throw new VimException($"optimiser state: '{key}' must be one int64 step count, found {saved.dtype} of shape [{string.Join(", ", saved.shape)}]");
            long steps = saved.item<long>();
            if (steps < 0 || steps > stepCount)
                throw new VimException($"optimiser state: '{key}' is {steps.ToString(CultureInfo.InvariantCulture)}, expected 0 to the {stepCount.ToString(CultureInfo.InvariantCulture)} optimiser steps taken");
            _steps[name] = steps;
        }
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var t in _expAvg.Values.Concat(_expAvgSq.Values)) t.Dispose();
    }
}
