using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

public class LossScalerTests
{
    [Test]
    public void ScalingKeepsFp16GradientsThatUnderflowWithoutIt()
    {
        using var scope = NewDisposeScope();
        var weight = randn(4, 3, generator: new Generator(3)).requires_grad_();
        var x = randn(2, 3, generator: new Generator(4));
        // d(1e-8·Σ x·Wᵀ)/dW = 1e-8·Σ_b x[b, :] per row: the fp16 backward sees 1e-8, below fp16's smallest subnormal.
        Tensor Objective()
        {
            using var region = new Autocast(DeviceType.CPU, ScalarType.Float16);
            return nn.functional.linear(x, weight).to_type(ScalarType.Float32).sum() * 1e-8f;
        }

        Objective().backward();
        Assert.That(weight.grad!.abs().max().item<float>(), Is.EqualTo(0f), "precondition: without scaling the gradient underflows");
        weight.grad!.zero_();

        var scaler = new LossScaler(LossScaler.DefaultInitialScale, dynamic: true);
        scaler.ScaleLoss(Objective()).backward();
        Assert.That(scaler.UnscaleGradients([weight.grad!]), Is.True);
        var expected = (x.sum(dim: 0) * 1e-8f).unsqueeze(0).expand(4, 3);
        Assert.That(weight.grad!.allclose(expected, rtol: 1e-2, atol: 1e-12), Is.True,
            $"got {string.Join(", ", weight.grad!.data<float>().ToArray())}");
    }

    [Test]
    public void UnscalingDividesInPlaceAndReportsNonFiniteGradients()
    {
        using var scope = NewDisposeScope();
        var scaler = new LossScaler(4, dynamic: false);
        var a = tensor(new[] { 8f, -4f });
        var b = tensor(new[] { 2f });
        Assert.That(scaler.UnscaleGradients([a, b]), Is.True);
        Assert.That(a.data<float>().ToArray(), Is.EqualTo(new[] { 2f, -1f }));
        Assert.That(b.data<float>().ToArray(), Is.EqualTo(new[] { 0.5f }));
        Assert.That(scaler.UnscaleGradients([tensor(new[] { 1f }), tensor(new[] { float.PositiveInfinity })]), Is.False);
        Assert.That(scaler.UnscaleGradients([tensor(new[] { float.NaN, 1f })]), Is.False);
        Assert.That(scaler.UnscaleGradients([]), Is.True, "a model without gradients has nothing to overflow");
    }

    [Test]
    public void DynamicScaleHalvesOnOverflowAndDoublesAfterTheGrowthInterval()
    {
        var scaler = new LossScaler(1024, dynamic: true, growthInterval: 3);
        scaler.Update(finite: false);
        Assert.That(scaler.Scale, Is.EqualTo(512));
        scaler.Update(true);
        scaler.Update(true);
        Assert.That((scaler.Scale, scaler.FiniteStepsInARow), Is.EqualTo((512.0, 2)));
        scaler.Update(false);
        Assert.That((scaler.Scale, scaler.FiniteStepsInARow), Is.EqualTo((256.0, 0)), "an overflow restarts the count");
        scaler.Update(true);
        scaler.Update(true);
        scaler.Update(true);
        Assert.That((scaler.Scale, scaler.FiniteStepsInARow), Is.EqualTo((512.0, 0)));
    }

    [Test]
    public void GrowthStopsWhereTheScaleWouldLeaveFloat32()
    {
        var scaler = new LossScaler(Math.Pow(2, 127), dynamic: true, growthInterval: 1);
        scaler.Update(true);
        Assert.That(scaler.Scale, Is.EqualTo(Math.Pow(2, 127)));
    }

    [Test]
    public void StaticScaleNeverChanges()
    {
        var scaler = LossScaler.FromSetting("512");
        Assert.That(scaler.Dynamic, Is.False);
        scaler.Update(false);
        scaler.Update(true);
        Assert.That(scaler.Scale, Is.EqualTo(512));
        var dynamic = LossScaler.FromSetting("dynamic");
        Assert.That((dynamic.Dynamic, dynamic.Scale, dynamic.GrowthInterval), Is.EqualTo((true, 65536.0, 2000)), "torch GradScaler's defaults");
    }

    [TestCase("0")]
    [TestCase("-8")]
    [TestCase("inf")]
    [TestCase("Dynamic")]
    [TestCase("")]
    public void BadSettingsAreRefusedNamingTheKey(string setting)
    {
        var e = Assert.Throws<VimException>(() => LossScaler.FromSetting(setting))!;
        Assert.That(e.Message, Does.Contain("runtime.loss_scale").And.Contain($"'{setting}'"));
    }

    [Test]
    public void Fp16TrainingFollowsFloat32WhereUnscaledGradientsWouldUnderflow()
    {
        // Weighted 2e-8, the loss's gradients reach the fp16 backward below 1e-8, which fp16 flushes to zero; lr 5e5 makes
        // plain SGD's steps those of lr 0.01 on the unweighted loss. SGD's step is proportional to the gradient, so a
        // trainer that skipped the unscaling would step 65536 times too far, and one that skipped the scaling not at all.
        const float weight = 2e-8f;
        using (var probe = new ToyRegressionTask(dropout: 0, lossWeight: weight))
        {
            using var scope = NewDisposeScope();
            using var source = probe.OpenTrainingData(0, DataPosition.Start, DataShard.Whole);
            using (new Autocast(DeviceType.CPU, ScalarType.Float16))
                probe.Losses(source.Next()).Values.Aggregate((a, b) => a + b).backward();
            Assert.That(probe.Model.parameters().Where(p => p.grad is not null).Max(p => p.grad!.abs().max().item<float>()), Is.EqualTo(0f),
                "precondition: unscaled, every fp16 gradient underflows");
        }
        var fp32 = TrainToy(amp: false, weight, maxIters: 4, out _, sgdLr: 5e5);
        var fp16 = TrainToy(amp: true, weight, maxIters: 4, out var state, sgdLr: 5e5);
        Assert.That(state.LossScale, Is.EqualTo(new LossScaleState(LossScaler.DefaultInitialScale, 4)), "no overflow: four finite steps at 2^16");
        Assert.That(state.OptimizerSteps, Is.EqualTo(4));

        using var untrained = new ToyRegressionTask(dropout: 0, lossWeight: weight);
        var initial = untrained.Weights();
        double moved = fp32.Zip(initial, (a, b) => Math.Abs(a - b)).Max();
        double deviation = fp32.Zip(fp16, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(moved, Is.GreaterThan(1e-3), "the float32 run trained");
        Assert.That(deviation, Is.LessThan(0.05 * moved), $"fp16 deviates by {deviation} from float32, which moved the weights by up to {moved}");
    }

    [Test]
    public void OverflowingStepsAreSkippedAndTheScaleBacksOff()
    {
        // Weighted 1000, the scaled gradients overflow fp16 (65504) until the scale has halved about ten times; each
        // overflow skips its step and halves the scale (and no 2000 finite steps double it here), so the steps taken
        // are the iterations less the halvings.
        const int iterations = 16;
        var weights = TrainToy(amp: true, lossWeight: 1000, maxIters: iterations, out var state);
        Assert.That(weights.All(float.IsFinite), Is.True);
        var scaleState = state.LossScale!.Value;
        int halvings = (int)Math.Round(Math.Log2(LossScaler.DefaultInitialScale / scaleState.Scale));
        Assert.That(halvings, Is.InRange(5, 15), $"scale {scaleState.Scale}");
        Assert.That(state.OptimizerSteps, Is.EqualTo(iterations - halvings));
        Assert.That(scaleState.FiniteStepsInARow, Is.InRange(1, iterations - halvings), "counted since the last overflow");
    }

    [Test]
    public void OverflowsAreLoggedAndPrinted()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-overflow-").FullName;
        try
        {
            using var task = new ToyRegressionTask(dropout: 0, lossWeight: 1000);
            var console = new StringWriter();
            new Trainer<(Tensor, Tensor)>(task, ToyConfig(amp: true, maxIters: 16, checkpointInterval: 16), dir, "cfg", console).Run(null);
            var logged = JsonLinesLog.Read(Path.Combine(dir, "log.jsonl")).Where(r => r.Mode is null).Sum(r => r.Has("overflows") ? (int)r.Number("overflows") : 0);
            var printed = console.ToString().Split('\n').Count(l => l.Contains("fp16 gradients overflowed, step skipped; loss scale", StringComparison.Ordinal));
            Assert.That(logged, Is.GreaterThanOrEqualTo(5));
            Assert.That(printed, Is.EqualTo(logged), "one console line per skipped step");
            Assert.That(console.ToString(), Does.Contain("loss scale 65536 → 32768"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void GradientsThatOverflowAtAnyScaleStopTheRun()
    {
        // Weighted 1e30, the loss is finite in float32 but its gradients overflow fp16 even at the smallest scale the
        // scaler reaches (2^16 halved 49 times is 1.2e-10; 1e30 · 1e-10 is far above 65504): a run that could only skip.
        var dir = Directory.CreateTempSubdirectory("vimdense-overflow-").FullName;
        try
        {
            using var task = new ToyRegressionTask(dropout: 0, lossWeight: 1e30f);
            var e = Assert.Throws<VimException>(() =>
                new Trainer<(Tensor, Tensor)>(task, ToyConfig(amp: true, maxIters: 200, checkpointInterval: 20), dir, "cfg", TextWriter.Null).Run(null))!;
            Assert.That(e.Message, Does.StartWith($"iteration {LossScaler.MaxOverflowsInARow - 1}: the fp16 gradients overflowed {LossScaler.MaxOverflowsInARow} steps in a row")
                .And.Contain($"Last good checkpoint: {new CheckpointDirectory(dir, 1).PathFor(40)}"), "checkpoints 20 and 40 came before it");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ResumedRunContinuesWithTheCheckpointsScale()
    {
        var whole = TrainToy(amp: true, lossWeight: 1000, maxIters: 16, out var wholeState);
        var dir = Directory.CreateTempSubdirectory("vimdense-scale-").FullName;
        try
        {
            var config = ToyConfig(amp: true, maxIters: 16, checkpointInterval: 4);
            using (var first = new ToyRegressionTask(dropout: 0, lossWeight: 1000, failAtCall: 7))
                Assert.Throws<InvalidOperationException>(() => new Trainer<(Tensor, Tensor)>(first, config, dir, "cfg", TextWriter.Null).Run(null));
            var checkpoint = new CheckpointDirectory(dir, 1).PathFor(4);
            using (var file = CheckpointFile.Load(checkpoint))
                Assert.That(double.Parse(file.Metadata["loss_scale"]), Is.LessThan(LossScaler.DefaultInitialScale), "four overflows by iteration 4");
            using var second = new ToyRegressionTask(dropout: 0, lossWeight: 1000);
            var result = new Trainer<(Tensor, Tensor)>(second, config, dir, "cfg", TextWriter.Null).Run(checkpoint);
            using var optimizer = OptimizerFactory.Create(config.Optimizer, ParameterGroupRules.Build(second.Model, config.Optimizer, 1));
            var state = TrainingCheckpoint.Load(result.LastCheckpoint!, second.Model, optimizer, null);
            Assert.That(state.LossScale, Is.EqualTo(wholeState.LossScale), "a scale restarted at 2^16 would overflow again and skip other steps");
            Assert.That(second.Weights(), Is.EqualTo(whole));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static ExperimentConfig ToyConfig(bool amp, int maxIters, int checkpointInterval, double? sgdLr = null) => new()
    {
        Optimizer = sgdLr is { } lr
            ? new OptimizerConfig { Type = OptimizerKind.Sgd, Lr = lr, Momentum = 0, WeightDecay = 0 }
            : new OptimizerConfig { Lr = 0.01 },
        Schedule = new ScheduleConfig { MaxIters = maxIters, WarmupIters = 0 },
        Train = new TrainConfig { LogInterval = 4, CheckpointInterval = checkpointInterval, EvalInterval = 0 },
        Runtime = new RuntimeConfig { Amp = amp, AmpDtype = "fp16" },
    };

    /// <summary>Trains the toy task and returns its weights and the state its last checkpoint holds.</summary>
    private static float[] TrainToy(bool amp, float lossWeight, int maxIters, out TrainingState state, double? sgdLr = null)
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-fp16-").FullName;
        try
        {
            using var task = new ToyRegressionTask(dropout: 0, lossWeight: lossWeight);
            var config = ToyConfig(amp, maxIters, checkpointInterval: maxIters, sgdLr);
            var result = new Trainer<(Tensor, Tensor)>(task, config, dir, "cfg", TextWriter.Null).Run(null);
            using var optimizer = OptimizerFactory.Create(config.Optimizer, ParameterGroupRules.Build(task.Model, config.Optimizer, 1));
            state = TrainingCheckpoint.Load(result.LastCheckpoint!, task.Model, optimizer, null);
            return task.Weights();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
