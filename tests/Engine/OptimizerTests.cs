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

    /// <summary>
    /// torch.optim.AdamW counts steps per parameter (state["step"]): a parameter that first gets a gradient at the
    /// optimiser's third step takes its first bias-corrected step there. Worked by hand (one element, p = 1, lr 0.1,
    /// wd 0.01, betas (0.9, 0.999), eps 1e-8; its gradients 0.5 then −0.25):
    ///   its step 1: p = 0.999; m = 0.05; v = 0.00025; m̂ = 0.05/0.1 = 0.5, √v̂ = √(0.00025/0.001) = 0.5
    ///               → p = 0.999 − 0.1·0.5/(0.5 + 1e-8) = 0.899000002
    ///   its step 2: p = 0.899000002·0.999; m = 0.02; v = 0.00031225 → p −= 0.1·(0.02/0.19)/(√(0.00031225/0.001999) + 1e-8)
    /// With the optimiser's global count (3, then 4) its first step would be 0.1·(0.05/0.271)/(√(0.00025/0.002997) + 1e-8),
    /// 0.0639 instead of 0.1. A float32 late parameter takes the fused step when it is on (float64 always takes the
    /// TorchSharp ops), so both paths' counts are checked; float32 rounding of a dozen ops near 0.9 stays within 1e-6.
    /// </summary>
    [TestCase(ScalarType.Float64, 1e-9)]
    [TestCase(ScalarType.Float32, 1e-6)]
    public void AdamWCountsStepsPerParameterAsTorchDoes(ScalarType lateType, double tolerance)
    {
        foreach (bool fused in new[] { true, false })
        {
            bool before = FusedOptimizerStep.Enabled;
            FusedOptimizerStep.Enabled = fused;
            try
            {
                var early = new Parameter(tensor(new float[] { 2.0f }));
                var late = new Parameter(tensor(new double[] { 1.0 }, dtype: lateType));
                using var adam = new AdamWOptimizer([new ParameterGroup("g", [("early", early), ("late", late)], WeightDecay: 0.01, LrScale: 1.0)],
                    0.9, 0.999, 1e-8);
                double[] lateGrads = [0, 0, 0.5, -0.25];
                double secondStep = 0.899000002 * 0.999 - 0.1 * (0.02 / 0.19) / (Math.Sqrt(0.00031225 / 0.001999) + 1e-8);
                double?[] expectedLate = [1.0, 1.0, 0.899000002, secondStep];
                for (int step = 0; step < 4; step++)
                {
                    using var scope = NewDisposeScope();
                    adam.ZeroGrad();
                    var loss = (early * early).sum();
                    if (step >= 2) loss = loss + (late * lateGrads[step]).sum().to_type(ScalarType.Float32);
                    loss.backward();
                    adam.Step(scale => 0.1 * scale);
                    Assert.That(Values(late)[0], Is.EqualTo(expectedLate[step]!.Value).Within(tolerance), $"{lateType}, fused {fused}: late parameter after step {step + 1}");
                }
                Assert.That(adam.StepCount, Is.EqualTo(4));
                Assert.That(adam.ParameterStepCount("early"), Is.EqualTo(4));
                Assert.That(adam.ParameterStepCount("late"), Is.EqualTo(2));
            }
            finally { FusedOptimizerStep.Enabled = before; }
        }
    }

    /// <summary>Per-parameter step counts survive a save and load; state written before they existed (no "step/…"
    /// entries) gives every parameter the global count, the count those runs used.</summary>
    [Test]
    public void PerParameterStepsRoundTripAndOldStateTakesTheGlobalCount()
    {
        Parameter Make(float x) => new(tensor(new[] { x, -x, 0.5f * x }));
        void Run(IOptimizer o, Parameter a, Parameter b, int from, int to)
        {
            for (int i = from; i < to; i++)
            {
                using var scope = NewDisposeScope();
                o.ZeroGrad();
                var loss = (a * a * a).sum();
                if (i >= 2) loss = loss + (b * b).sum(); // b gets its first gradient at the third step
                loss.backward();
                o.Step(scale => 0.05 * scale);
            }
        }
        ParameterGroup[] Groups(Parameter a, Parameter b) => [new ParameterGroup("g", [("a", a), ("b", b)], 0.05, 1.0)];

        var (a1, b1) = (Make(0.3f), Make(1.1f));
        using var straight = new AdamWOptimizer(Groups(a1, b1));
        Run(straight, a1, b1, 0, 5);

        var (a2, b2) = (Make(0.3f), Make(1.1f));
        var first = new AdamWOptimizer(Groups(a2, b2));
        Run(first, a2, b2, 0, 3);
        var saved = first.StateTensors().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        Assert.That(saved["step/a"].item<long>(), Is.EqualTo(3));
        Assert.That(saved["step/b"].item<long>(), Is.EqualTo(1));
        first.Dispose();
        using var resumed = new AdamWOptimizer(Groups(a2, b2));
        resumed.LoadState(saved, 3);
        Assert.That((resumed.ParameterStepCount("a"), resumed.ParameterStepCount("b")), Is.EqualTo((3L, 1L)));
        Run(resumed, a2, b2, 3, 5);
        Assert.That(TensorBits.Same(a2, a1) && TensorBits.Same(b2, b1), Is.True, "resumed bit for bit");

        using var fromOldState = new AdamWOptimizer(Groups(Make(0), Make(0)));
        fromOldState.LoadState(saved.Where(kv => !kv.Key.StartsWith("step/")).ToDictionary(kv => kv.Key, kv => kv.Value), 3);
        Assert.That((fromOldState.ParameterStepCount("a"), fromOldState.ParameterStepCount("b")), Is.EqualTo((3L, 3L)));

        var partial = saved.Where(kv => kv.Key != "step/b").ToDictionary(kv => kv.Key, kv => kv.Value);
        var e = Assert.Throws<Vim.Core.VimException>(() => new AdamWOptimizer(Groups(Make(0), Make(0))).LoadState(partial, 3))!;
        Assert.That(e.Message, Does.Contain("step/b"));
        var tooMany = new Dictionary<string, Tensor>(saved) { ["step/a"] = tensor(7L) };
        e = Assert.Throws<Vim.Core.VimException>(() => new AdamWOptimizer(Groups(Make(0), Make(0))).LoadState(tooMany, 3))!;
        Assert.That(e.Message, Does.Contain("step/a").And.Contain("7"));
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
