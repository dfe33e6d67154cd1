using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

public class AutocastTests
{
    [Test]
    public void MatmulsRunInBf16InsideTheRegionAndGradientsStayFp32()
    {
        using var scope = NewDisposeScope();
        var weight = randn(4, 3).requires_grad_();
        var x = randn(2, 3);
        Assert.That(Autocast.IsEnabled(DeviceType.CPU), Is.False);
        Tensor y;
        using (new Autocast(DeviceType.CPU, ScalarType.BFloat16))
        {
            Assert.That(Autocast.IsEnabled(DeviceType.CPU), Is.True);
            y = nn.functional.linear(x, weight);
        }
        Assert.That(Autocast.IsEnabled(DeviceType.CPU), Is.False, "closing the region restores the previous state");
        Assert.That(y.dtype, Is.EqualTo(ScalarType.BFloat16));
        y.to_type(ScalarType.Float32).sum().backward();
        Assert.That(weight.grad!.dtype, Is.EqualTo(ScalarType.Float32));
        // d(sum(x·Wᵀ))/dW[i, j] = Σ_b x[b, j], up to bf16 rounding of the forward inputs.
        // sum(dim: 0): a bare literal 0 would bind to the ScalarType overload.
        var expected = x.sum(dim: 0).unsqueeze(0).expand(4, 3);
        Assert.That(weight.grad!.allclose(expected, rtol: 2e-2, atol: 2e-2), Is.True);
        Assert.That(nn.functional.linear(x, weight).dtype, Is.EqualTo(ScalarType.Float32), "outside the region: fp32");
    }

    [Test]
    public void Fp16RegionsComputeInHalfOnTheCpuToo()
    {
        using var scope = NewDisposeScope();
        Tensor y;
        using (new Autocast(DeviceType.CPU, ScalarType.Float16))
            y = nn.functional.linear(randn(2, 3), randn(4, 3));
        Assert.That(y.dtype, Is.EqualTo(ScalarType.Float16));
    }

    [Test]
    public void OtherTypesAreRefusedWithTheConfigKey()
    {
        var e = Assert.Throws<VimException>(() => new Autocast(DeviceType.CPU, ScalarType.Float64))!;
        Assert.That(e.Message, Does.Contain("runtime.amp_dtype"));
    }

    [Test]
    public void TrainerWithAmpTrainsTheToyTask()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-amp-").FullName;
        try
        {
            using var task = new ToyRegressionTask();
            var before = task.Weights();
            var config = new ExperimentConfig
            {
                Optimizer = new OptimizerConfig { Lr = 0.01 },
                Schedule = new ScheduleConfig { MaxIters = 8, WarmupIters = 0 },
                Train = new TrainConfig { LogInterval = 4, CheckpointInterval = 8, EvalInterval = 8 },
                Runtime = new RuntimeConfig { Amp = true, AmpDtype = "bf16" },
            };
            var result = new Trainer<(Tensor, Tensor)>(task, config, dir, "cfg", TextWriter.Null).Run(null);
            Assert.That(result.Iteration, Is.EqualTo(8));
            var after = task.Weights();
            Assert.That(after.All(float.IsFinite), Is.True);
            Assert.That(after, Is.Not.EqualTo(before), "the weights were updated");
            Assert.That(Autocast.IsEnabled(DeviceType.CPU), Is.False, "the trainer closes its region every step");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
