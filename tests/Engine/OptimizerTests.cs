using NUnit.Framework;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>Our optimisers against the textbook update rules written out in scalar double arithmetic.</summary>
public class OptimizerTests
{
    private static double[] Values(Tensor t) => t.to_type(ScalarType.Float64).data<double>().ToArray();

    [Test]
    public void AdamWMatchesTheAlgorithmStepByStep()
    {
        var w = new Parameter(tensor(new double[] { 1.0, -2.0 }, dtype: ScalarType.Float64));
        var group = new ParameterGroup("g", [("w", w)], WeightDecay: 0.1, LrScale: 0.5);
        using var adam = new AdamWOptimizer([group], beta1: 0.9, beta2: 0.99, eps: 1e-8);
        double[] expected = [1.0, -2.0], m = [0, 0], v = [0, 0];
        double lr = 0.01, effectiveLr = lr * 0.5;
        for (int step = 1; step <= 3; step++)
        {
            using var scope = NewDisposeScope();
            adam.ZeroGrad();
            // loss = Σ w³ → grad 3w².
            (w * w * w).sum().backward();
            for (int i = 0; i < 2; i++)
            {
                double g = 3 * expected[i] * expected[i];
                expected[i] *= 1 - effectiveLr * 0.1;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.99 * v[i] + 0.01 * g * g;
                double mHat = m[i] / (1 - Math.Pow(0.9, step));
                double denom = Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(0.99, step)) + 1e-8;
                expected[i] -= effectiveLr * mHat / denom;
            }
            adam.Step(scale => lr * scale);
            Assert.That(Values(w), Is.EqualTo(expected).Within(1e-12), $"after step {step}");
        }
        Assert.That(adam.StepCount, Is.EqualTo(3));
    }

    [Test]
    public void SgdWithMomentumMatchesTheAlgorithmStepByStep()
    {
        var w = new Parameter(tensor(new double[] { 0.5 }, dtype: ScalarType.Float64));
        using var sgd = new SgdOptimizer([new ParameterGroup("g", [("w", w)], WeightDecay: 0.01, LrScale: 1.0)], momentum: 0.9);
        double x = 0.5, buffer = 0;
        for (int step = 1; step <= 3; step++)
        {
            using var scope = NewDisposeScope();
            sgd.ZeroGrad();
            (w * w).sum().backward();
            double d = 2 * x + 0.01 * x;
            buffer = step == 1 ? d : 0.9 * buffer + d;
            x -= 0.1 * buffer;
            sgd.Step(scale => 0.1 * scale);
            Assert.That(Values(w)[0], Is.EqualTo(x).Within(1e-12), $"after step {step}");
        }
    }

    [Test]
    public void StateRoundTripContinuesIdentically()
    {
        // Two optimisers: one runs 4 steps; the other runs 2, saves, is rebuilt from the saved state, runs 2 more.
        Parameter Make() => new(tensor(new float[] { 0.3f, -0.7f, 1.1f }));
        void Run(IOptimizer o, Parameter p, int steps)
        {
            for (int i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                o.ZeroGrad();
                (p * p * p).sum().backward();
                o.Step(scale => 0.05 * scale);
            }
        }
        var a = Make();
        using var straight = new AdamWOptimizer([new ParameterGroup("g", [("p", a)], 0.05, 1.0)]);
        Run(straight, a, 4);

        var b = Make();
        var first = new AdamWOptimizer([new ParameterGroup("g", [("p", b)], 0.05, 1.0)]);
        Run(first, b, 2);
        var saved = first.StateTensors().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        long steps = first.StepCount;
        first.Dispose();
        using var resumed = new AdamWOptimizer([new ParameterGroup("g", [("p", b)], 0.05, 1.0)]);
        resumed.LoadState(saved, steps);
        Run(resumed, b, 2);

        Assert.That(b.data<float>().ToArray(), Is.EqualTo(a.data<float>().ToArray()), "bitwise equal");
    }

    [Test]
    public void LoadStateNamesAMissingSlot()
    {
        var p = new Parameter(zeros(2));
        using var adam = new AdamWOptimizer([new ParameterGroup("g", [("layers.0.w", p)], 0, 1)]);
        var e = Assert.Throws<Vim.Core.VimException>(() => adam.LoadState(new Dictionary<string, Tensor>(), 1))!;
        Assert.That(e.Message, Does.Contain("exp_avg/layers.0.w"));
    }

    [Test]
    public void EmaFollowsTheRecurrence()
    {
        var model = nn.Linear(1, 1, hasBias: false);
        using (no_grad()) model.weight!.fill_(1.0f);
        using var ema = new ExponentialMovingAverage(model, decay: 0.9);
        using (no_grad()) model.weight!.fill_(2.0f);
        ema.Update(model); // 0.9·1 + 0.1·2 = 1.1
        using (no_grad()) model.weight!.fill_(0.0f);
        ema.Update(model); // 0.9·1.1 + 0.1·0 = 0.99
        Assert.That(ema.Shadow["weight"].item<float>(), Is.EqualTo(0.99f).Within(1e-6));
    }
}
