using NUnit.Framework;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// The native fused AdamW/SGD step (<see cref="FusedOptimizerStep"/>) against hand-computed updates and against the
/// optimisers' TorchSharp path, which it must equal bit for bit (same bytes, stricter than torch.equal): the fused step reproduces each libtorch
/// op's float32 rounding, so a run gives the same numbers on either path.
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
            Assert.That(batch.TryAddSgd(p, tensor(new[] { grads[step] }), buffer, lr: 0.5, weightDecay: 0.1), Is.True);
            batch.Sgd(momentum: 0.9, firstStep: step == 0);
            Assert.That(p.item<float>(), Is.EqualTo(expectedParam[step]).Within(1e-6), $"param after step {step + 1}");
            Assert.That(buffer.item<float>(), Is.EqualTo(expectedBuffer[step]).Within(1e-6), $"momentum buffer after step {step + 1}");
        }
    }

    /// <summary>A model's parameters in three groups (decayed, no decay at a lower lr, frozen by lr_mult 0), one parameter
    /// outside the loss (no gradient), one that joins the loss only from step <see cref="LateStart"/> (its own step
    /// count starts then) and one float64 parameter (left to the TorchSharp path). The float32 sizes exercise libtorch's
    /// vector bodies and scalar tails (AVX2 8 / AVX-512 16 lanes, two vectors an iteration) and, past 32,768 elements,
    /// its split of a tensor between threads.</summary>
    private sealed class Model
    {
        public const int LateStart = 4;
        private static readonly long[] Sizes = [1, 7, 15, 16, 17, 31, 33, 1023, 4097, 70_001];
        public readonly Parameter[] Decayed, Plain;
        public readonly Parameter Frozen, Unused, Late, Double;
        public readonly ParameterGroup[] Groups;

        public Model()
        {
            var generator = new Generator(1234);
            Parameter P(long size) => new(randn([size], generator: generator));
            Decayed = Sizes.Select(P).ToArray();
            Plain = Sizes.Select(P).ToArray();
            (Frozen, Unused, Late) = (P(17), P(6), P(33));
            Double = new Parameter(randn([5], dtype: ScalarType.Float64, generator: generator));
            Groups =
            [
                new ParameterGroup("decay", [.. Decayed.Select((p, i) => ($"decayed{i}", p)), ("double", Double), ("late", Late)], WeightDecay: 0.05, LrScale: 1.0),
                new ParameterGroup("no_decay", [.. Plain.Select((p, i) => ($"plain{i}", p)), ("unused", Unused)], WeightDecay: 0, LrScale: 0.3),
                new ParameterGroup("frozen", [("frozen", Frozen)], WeightDecay: 0.05, LrScale: 0),
            ];
        }

        /// <summary>A loss whose gradients change from step to step (a different random target each step), some of
        /// them large and some tiny, so the second moments span many binades.</summary>
        public Tensor Loss(int step)
        {
            var generator = new Generator((ulong)(100 + step));
            Tensor Term(Tensor p, double scale) => (p.tanh() - randn(p.shape, dtype: p.dtype, generator: generator)).pow(2).sum() * scale;
            var loss = Term(Frozen, 1) + Term(Double, 1).to_type(ScalarType.Float32);
            for (int i = 0; i < Decayed.Length; i++) loss = loss + Term(Decayed[i], 1) + Term(Plain[i], i % 2 == 0 ? 1e-4 : 30);
            return step >= LateStart ? loss + Term(Late, 1) : loss;
        }

        public IEnumerable<(string Name, Parameter P)> All => Groups.SelectMany(g => g.Parameters);
    }

    private static Model Train(bool fused, Func<ParameterGroup[], IOptimizer> create, int steps, Func<int, double?> momentum,
        out Dictionary<string, Tensor> state)
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
                optimizer.Step(scale => 1e-2 * scale * (step + 1) / steps, momentum(step));
            }
            saved = optimizer.StateTensors().ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
        });
        state = saved!;
        return model;
    }

    private static void AssertSameTraining(Func<ParameterGroup[], IOptimizer> create, int steps, Func<int, double?> momentum)
    {
        var reference = Train(fused: false, create, steps, momentum, out var referenceState);
        var fusedModel = Train(fused: true, create, steps, momentum, out var fusedState);
        var initial = new Model();
        foreach (var ((name, r), (_, f), (_, start)) in reference.All.Zip(fusedModel.All, initial.All))
        {
            Assert.That(f.dtype, Is.EqualTo(r.dtype));
            Assert.That(TensorBits.Same(f, r), Is.True, $"{name} ({r.numel()} elements): fused equals the TorchSharp path bit for bit");
            if (name is "frozen" or "unused")
                Assert.That(TensorBits.Same(f, start), Is.True, $"{name}: lr_mult 0 or no gradient leaves it unchanged");
            else
                Assert.That(TensorBits.Same(f, start), Is.False, $"{name} trained");
        }
        Assert.That(fusedState.Keys, Is.EquivalentTo(referenceState.Keys), "the same state slots (checkpoints unchanged)");
        foreach (var (key, r) in referenceState)
            Assert.That(TensorBits.Same(fusedState[key], r), Is.True, $"{key}: fused equals the TorchSharp path bit for bit");
        Assert.That(Values(fusedState[referenceState.Keys.First(k => k.EndsWith("/unused"))]), Is.All.EqualTo(0f),
            "a parameter without gradient keeps zero state");
    }

    [Test]
    public void FusedAdamWEqualsTheTorchSharpPathBitForBit() =>
        AssertSameTraining(groups => new AdamWOptimizer(groups, beta1: 0.9, beta2: 0.999, eps: 1e-8), steps: 12, _ => null);

    [Test]
    public void FusedAdamWWithAScheduledBeta1EqualsTheTorchSharpPathBitForBit() =>
        AssertSameTraining(groups => new AdamWOptimizer(groups, beta1: 0.9, beta2: 0.99, eps: 1e-6), steps: 8,
            step => 0.85 + 0.01 * (step % 3));

    [Test]
    public void FusedSgdEqualsTheTorchSharpPathBitForBit()
    {
        AssertSameTraining(groups => new SgdOptimizer(groups, momentum: 0.9), steps: 12, _ => null);
        AssertSameTraining(groups => new SgdOptimizer(groups, momentum: 0.9), steps: 6, step => 0.8 + 0.05 * (step % 3));
        AssertSameTraining(groups => new SgdOptimizer(groups, momentum: 0), steps: 5, _ => null);
    }

    /// <summary>libtorch splits an elementwise op on a tensor past 32,768 elements between its threads, each part starting
    /// at an offset that is no multiple of the vector width (100,003 / 3 threads: 33,335 and 66,670), so each part has its
    /// own scalar head and tail and MKL's sqrt sees other block bounds; the fused step, on one thread in 1,024-element
    /// blocks, must still give the same bytes, whatever the thread count.</summary>
    [TestCase(1)]
    [TestCase(3)]
    [TestCase(5)]
    public void FusedStepIsBitIdenticalWhateverLibtorchsThreadSplit(int threads)
    {
        int before = get_num_threads();
        set_num_threads(threads);
        try
        {
            (Tensor P, Tensor M, Tensor V) Run(bool fused, Func<ParameterGroup[], IOptimizer> create)
            {
                (Tensor, Tensor, Tensor) result = default;
                WithFused(fused, () =>
                {
                    var generator = new Generator(77);
                    var w = new Parameter(randn([100_003], generator: generator));
                    using var optimizer = create([new ParameterGroup("g", [("w", w)], WeightDecay: 0.05, LrScale: 1.0)]);
                    for (int step = 0; step < 4; step++)
                    {
                        using var scope = NewDisposeScope();
                        optimizer.ZeroGrad();
                        // Gradients over many binades: tiny, ordinary and large elements side by side.
                        var scale = exp(randn([100_003], generator: generator) * 8);
                        (w * randn([100_003], generator: generator) * scale).sum().backward();
                        optimizer.Step(s => 1e-2 * s);
                    }
                    var state = optimizer.StateTensors().Values.Where(t => t.dtype == ScalarType.Float32).Select(t => t.clone().DetachFromDisposeScope()).ToArray();
                    result = (w.detach().clone(), state.ElementAtOrDefault(0) ?? zeros(1), state.ElementAtOrDefault(1) ?? zeros(1));
                });
                return result;
            }
            foreach (var (name, create) in new (string, Func<ParameterGroup[], IOptimizer>)[]
                     {
                         ("AdamW", g => new AdamWOptimizer(g)),
                         ("SGD", g => new SgdOptimizer(g, momentum: 0.9)),
                     })
            {
                var reference = Run(false, create);
                var fused = Run(true, create);
                Assert.That(TensorBits.Same(fused.P, reference.P), Is.True, $"{name}, {threads} threads: parameter");
                Assert.That(TensorBits.Same(fused.M, reference.M) && TensorBits.Same(fused.V, reference.V), Is.True, $"{name}, {threads} threads: state");
            }
        }
        finally { set_num_threads(before); }
    }

    /// <summary>ATen's portable kernels (ATEN_CPU_CAPABILITY=default, or a CPU without AVX2 and FMA) round add(alpha) and
    /// addcmul without an fma, so the fused step would differ from the TorchSharp path there (measured: every bit-identity
    /// test above failed with ATEN_CPU_CAPABILITY=default); those machines keep the TorchSharp ops.</summary>
    [Test]
    public void TheKernelIsUsedOnlyWhereLibtorchRunsItsFmaKernels()
    {
        Assert.That(FusedOptimizerStep.RoundsAsLibtorch(null, cpuHasAvx2AndFma: true), Is.True);
        Assert.That(FusedOptimizerStep.RoundsAsLibtorch("avx2", cpuHasAvx2AndFma: true), Is.True);
        Assert.That(FusedOptimizerStep.RoundsAsLibtorch("avx512", cpuHasAvx2AndFma: true), Is.True);
        Assert.That(FusedOptimizerStep.RoundsAsLibtorch("default", cpuHasAvx2AndFma: true), Is.False);
        Assert.That(FusedOptimizerStep.RoundsAsLibtorch(null, cpuHasAvx2AndFma: false), Is.False);
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
