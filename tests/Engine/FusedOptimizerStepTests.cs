using NUnit.Framework;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// The native fused AdamW/SGD step (<see cref="FusedOptimizerStep"/>) against hand-computed updates and against the
/// optimisers' TorchSharp path. Tolerance against the TorchSharp path: both run float32 arithmetic in the same order,
/// except that libtorch's add with alpha (the first moment's update, SGD's decay) rounds once through an FMA where we
/// round twice, so a step differs by about one float32 ulp of its terms (~6e-8 relative); over 30 steps with lr up to
/// 1e-2 that stays below 1e-5 absolute on parameters of size ~1.
/// </summary>
[NonParallelizable] // FusedOptimizerStep.Enabled is process-wide
public class FusedOptimizerStepTests
{
    private static float[] Values(Tensor t) => t.data<float>().ToArray();

    /// <summary>Runs <paramref name="body"/> with the fused step switched on or off, restoring the switch after.</summary>
    private static void WithFused(bool enabled, Action body)
    {
        bool before = FusedOptimizerStep.Enabled;
        FusedOptimizerStep.Enabled = enabled;
        try { body(); }
        finally { FusedOptimizerStep.Enabled = before; }
    }

    [Test]
    public void FusedAdamWMatchesTwoHandComputedSteps()
    {
        // One float32 element: p = 1, lr 0.1, wd 0.01, betas (0.9, 0.999), eps 1e-8; loss = c·p gives grad c.
        //   step 1 (g = 0.5): p = 0.999; m = 0.05; v = 0.00025; m̂ = 0.5, √v̂ = 0.5 → p = 0.999 - 0.1·0.5/(0.5 + 1e-8) = 0.899000002
        //   step 2 (g = -0.25): p = 0.899000002·0.999 = 0.898101002; m = 0.045 - 0.025 = 0.02; v = 0.00024975 + 0.0000625 = 0.00031225
        //           → p = 0.898101002 - 0.1·(0.02/0.19)/(√(0.00031225/0.001999) + 1e-8) = 0.871467…
        WithFused(true, () =>
        {
            var w = new Parameter(tensor(new[] { 1.0f }));
            using var adam = new AdamWOptimizer([new ParameterGroup("g", [("w", w)], WeightDecay: 0.01, LrScale: 1.0)], 0.9, 0.999, 1e-8);
            double[] grads = [0.5, -0.25];
            double[] expectedParam = [0.899000002, 0.898101002 - 0.1 * (0.02 / 0.19) / (Math.Sqrt(0.00031225 / 0.001999) + 1e-8)];
            double[] expectedExpAvg = [0.05, 0.02], expectedExpAvgSq = [0.00025, 0.00031225];
            for (int step = 0; step < 2; step++)
            {
                using var scope = NewDisposeScope();
                adam.ZeroGrad();
                (w * (float)grads[step]).sum().backward();
                adam.Step(scale => 0.1 * scale);
                var state = adam.StateTensors();
                Assert.That(w.item<float>(), Is.EqualTo(expectedParam[step]).Within(2e-7), $"param after step {step + 1}");
                Assert.That(state["exp_avg/w"].item<float>(), Is.EqualTo(expectedExpAvg[step]).Within(1e-8), $"exp_avg after step {step + 1}");
                Assert.That(state["exp_avg_sq/w"].item<float>(), Is.EqualTo(expectedExpAvgSq[step]).Within(1e-10), $"exp_avg_sq after step {step + 1}");
            }
            Assert.That(expectedParam[1], Is.EqualTo(0.871467).Within(1e-6), "the hand value itself");
        });
    }

    [Test]
    public void FusedSgdBatchMatchesTwoHandComputedSteps()
    {
        // Called on the batch itself, so the native kernel is what runs (the optimiser falls back silently).
        // One element: p = 1, lr 0.5, wd 0.1, momentum 0.9.
        //   step 1 (g = 0.5): d = 0.5 + 0.1·1 = 0.6; b = d = 0.6 (torch's first-step copy); p = 1 - 0.5·0.6 = 0.7
        //   step 2 (g = -0.25): d = -0.25 + 0.1·0.7 = -0.18; b = 0.9·0.6 - 0.18 = 0.36; p = 0.7 - 0.5·0.36 = 0.52
        using var scope = NewDisposeScope();
        var p = tensor(new[] { 1.0f });
        var buffer = zeros(1);
        float[] grads = [0.5f, -0.25f];
        float[] expectedParam = [0.7f, 0.52f], expectedBuffer = [0.6f, 0.36f];
        for (int step = 0; step < 2; step++)
        {
            var batch = new FusedOptimizerStep.Batch();
            Assert.That(batch.TryAdd(p, tensor(new[] { grads[step] }), buffer, null, lr: 0.5, weightDecay: 0.1), Is.True);
            batch.Sgd(momentum: 0.9, firstStep: step == 0);
            Assert.That(p.item<float>(), Is.EqualTo(expectedParam[step]).Within(1e-6), $"param after step {step + 1}");
            Assert.That(buffer.item<float>(), Is.EqualTo(expectedBuffer[step]).Within(1e-6), $"momentum buffer after step {step + 1}");
        }
    }

    /// <summary>A small model's parameters in three groups (decayed, no decay at a lower lr, frozen by lr_mult 0), one
    /// parameter outside the loss (no gradient) and one float64 parameter (left to the TorchSharp path).</summary>
    private sealed class Model
    {
        public readonly Parameter Big, Small, Bias, Frozen, Unused, Double;
        public readonly ParameterGroup[] Groups;

        public Model()
        {
            var generator = new Generator(1234);
            Parameter P(params long[] shape) => new(randn(shape, generator: generator));
            // Sizes from one element to 70,000 (vector-width remainders included).
            (Big, Small, Bias, Frozen, Unused) = (P(70_000), P(3, 5), P(7), P(4), P(6));
            Double = new Parameter(randn([5], dtype: ScalarType.Float64, generator: generator));
            Groups =
            [
                new ParameterGroup("decay", [("big", Big), ("small", Small), ("double", Double)], WeightDecay: 0.05, LrScale: 1.0),
                new ParameterGroup("no_decay", [("bias", Bias), ("unused", Unused)], WeightDecay: 0, LrScale: 0.3),
                new ParameterGroup("frozen", [("frozen", Frozen)], WeightDecay: 0.05, LrScale: 0),
            ];
        }

        /// <summary>A loss whose gradients change from step to step (a different random target each step).</summary>
        public Tensor Loss(int step)
        {
            var generator = new Generator((ulong)(100 + step));
            Tensor Term(Tensor p) => (p.tanh() - randn(p.shape, dtype: p.dtype, generator: generator)).pow(2).sum();
            return Term(Big) + Term(Small) + Term(Bias) + Term(Frozen) + Term(Double).to_type(ScalarType.Float32);
        }

        public IEnumerable<(string Name, Parameter P)> All =>
            [("big", Big), ("small", Small), ("bias", Bias), ("frozen", Frozen), ("unused", Unused), ("double", Double)];
    }

    private static Model Train(bool fused, Func<ParameterGroup[], IOptimizer> create, int steps, out Dictionary<string, Tensor> state)
    {
        var model = new Model();
        Dictionary<string, Tensor>? saved = null;
        WithFused(fused, () =>
        {
            using var optimizer = create(model.Groups);
            for (int step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.ZeroGrad();
                model.Loss(step).backward();
                // A warm-up-like lr that changes every step.
                optimizer.Step(scale => 1e-2 * scale * (step + 1) / steps);
            }
            saved = optimizer.StateTensors().ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
        });
        state = saved!;
        return model;
    }

    private static void AssertSameTraining(Func<ParameterGroup[], IOptimizer> create, int steps)
    {
        var reference = Train(fused: false, create, steps, out var referenceState);
        var fusedModel = Train(fused: true, create, steps, out var fusedState);
        var initial = new Model();
        foreach (var ((name, r), (_, f), (_, start)) in reference.All.Zip(fusedModel.All, initial.All))
        {
            if (r.dtype == ScalarType.Float64)
                Assert.That(f.data<double>().ToArray(), Is.EqualTo(r.data<double>().ToArray()), $"{name}: float64 keeps the TorchSharp path, bit for bit");
            else
                Assert.That(Values(f), Is.EqualTo(Values(r)).Within(1e-5), $"{name}: fused vs TorchSharp");
            if (name is "frozen" or "unused")
                Assert.That(Values(f), Is.EqualTo(Values(start)), $"{name}: lr_mult 0 or no gradient leaves it unchanged");
            else
                Assert.That(Values(f.to_type(ScalarType.Float32)), Is.Not.EqualTo(Values(start.to_type(ScalarType.Float32))), $"{name} trained");
        }
        Assert.That(fusedState.Keys, Is.EquivalentTo(referenceState.Keys), "the same state slots (checkpoints unchanged)");
        foreach (var (key, r) in referenceState)
            Assert.That(fusedState[key].to_type(ScalarType.Float64).data<double>().ToArray(),
                Is.EqualTo(r.to_type(ScalarType.Float64).data<double>().ToArray()).Within(1e-5), key);
        Assert.That(Values(fusedState[referenceState.Keys.First(k => k.EndsWith("/unused"))]), Is.All.EqualTo(0f),
            "a parameter without gradient keeps zero state");
    }

    [Test]
    public void FusedAdamWEqualsTheTorchSharpPathOverManySteps() =>
        AssertSameTraining(groups => new AdamWOptimizer(groups, beta1: 0.9, beta2: 0.999, eps: 1e-8), steps: 30);

    [Test]
    public void FusedSgdEqualsTheTorchSharpPathOverManySteps()
    {
        AssertSameTraining(groups => new SgdOptimizer(groups, momentum: 0.9), steps: 30);
        AssertSameTraining(groups => new SgdOptimizer(groups, momentum: 0), steps: 5);
    }

    [Test]
    public void NonContiguousOrHalfPrecisionTensorsAreNotAccepted()
    {
        using var scope = NewDisposeScope();
        Assert.That(FusedOptimizerStep.Accepts(zeros(3, 4)), Is.True);
        Assert.That(FusedOptimizerStep.Accepts(zeros(3, 4).t()), Is.False, "transposed");
        Assert.That(FusedOptimizerStep.Accepts(zeros(3, 4, dtype: ScalarType.BFloat16)), Is.False, "bf16");
        Assert.That(FusedOptimizerStep.Accepts(zeros(3, 4, dtype: ScalarType.Float64)), Is.False, "float64");
    }
}
