using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>runtime.device → torch device: parsing, the checks against the machine, and the per-rank GPU choice.</summary>
public class DeviceSelectionTests
{
    [TestCase("cpu")]
    [TestCase(" CPU ")]
    public void CpuResolvesToTheCpu(string text)
    {
        var device = DeviceSelection.Resolve(new RuntimeConfig { Device = text });
        Assert.That(device.type, Is.EqualTo(DeviceType.CPU));
    }

    [TestCase("cuda", null)]
    [TestCase("cuda:0", 0)]
    [TestCase("cuda:12", 12)]
    public void CudaStringsParse(string text, int? index)
    {
        Assert.That(DeviceSelection.Parse(text), Is.EqualTo((DeviceType.CUDA, index)));
    }

    [TestCase("gpu")]
    [TestCase("cuda:x")]
    [TestCase("cuda:")]
    [TestCase("cuda:-1")]
    [TestCase("cuda:1.0")]
    [TestCase("cuda0")]
    [TestCase("cpu:0")]
    [TestCase("")]
    public void BadStringsAreRefusedNamingTheKey(string text)
    {
        var e = Assert.Throws<VimException>(() => DeviceSelection.Resolve(new RuntimeConfig { Device = text }))!;
        Assert.That(e.Message, Does.Contain("runtime.device"));
        Assert.That(e.Message, Does.Contain($"'{text}'"));
        Assert.That(e.Message, Does.Contain("cpu, cuda or cuda:N"));
    }

    [Test]
    public void CudaWithoutCudaNamesTheKeyAndTheBuildBackend()
    {
        Assume.That(cuda.is_available(), Is.False, "this check is about machines without CUDA");
        var e = Assert.Throws<VimException>(() => DeviceSelection.Resolve(new RuntimeConfig { Device = "cuda:0" }))!;
        Assert.That(e.Message, Does.Contain("runtime.device is 'cuda:0'"));
        Assert.That(e.Message, Does.Contain("no CUDA device"));
        Assert.That(e.Message, Does.Contain(DeviceSelection.BuildBackend));
        Assert.That(e.Message, Does.Contain("-p:TorchBackend=cuda"));
        // This test program is the CPU build (the default TorchBackend).
        Assert.That(DeviceSelection.BuildBackend, Does.StartWith("TorchSharp-cpu"));
    }

    [TestCase(null, 4, 0)]
    [TestCase(0, 4, 0)]
    [TestCase(5, 4, 1)]
    [TestCase(3, 2, 1)]
    [TestCase(7, 1, 0)]
    public void PlainCudaTakesLocalRankModuloTheGpuCount(int? localRank, int gpus, int expected)
    {
        Assert.That(DeviceSelection.CudaIndex("cuda", gpus, localRank), Is.EqualTo(expected));
    }

    [Test]
    public void AnExplicitIndexIsKeptOnEveryRankAndCheckedAgainstTheGpuCount()
    {
        Assert.That(DeviceSelection.CudaIndex("cuda:1", 2, localRank: 0), Is.EqualTo(1));
        Assert.That(DeviceSelection.CudaIndex("cuda:1", 2, localRank: 1), Is.EqualTo(1));
        var e = Assert.Throws<VimException>(() => DeviceSelection.CudaIndex("cuda:2", 2, localRank: 0))!;
        Assert.That(e.Message, Does.Contain("runtime.device is 'cuda:2'"));
        Assert.That(e.Message, Does.Contain("2 CUDA devices (cuda:0..cuda:1)"));
        Assert.Throws<VimException>(() => DeviceSelection.CudaIndex("cuda", 0, localRank: 0));
    }

    [Test]
    public void LocalRankComesFromOpenMpi()
    {
        const string key = "OMPI_COMM_WORLD_LOCAL_RANK";
        var saved = Environment.GetEnvironmentVariable(key);
        try
        {
            Environment.SetEnvironmentVariable(key, "3");
            Assert.That(DeviceSelection.LocalRank(), Is.EqualTo(3));
            Environment.SetEnvironmentVariable(key, null);
            Assert.That(DeviceSelection.LocalRank(), Is.Null);
        }
        finally
        {
            Environment.SetEnvironmentVariable(key, saved);
        }
    }

    [Test]
    public void ModelDeviceFollowsItsParametersAndMovingToItsOwnDeviceKeepsThem()
    {
        using var model = nn.Linear(3, 2);
        var before = model.weight!;
        Assert.That(DeviceSelection.Of(model).type, Is.EqualTo(DeviceType.CPU));
        DeviceSelection.MoveModel(model, CPU);
        Assert.That(ReferenceEquals(model.weight, before) || model.weight!.Handle == before.Handle, Is.True, "no copy when the model is there already");

        using var meta = nn.Linear(3, 2);
        DeviceSelection.MoveModel(meta, torch.device("meta"));
        Assert.That(DeviceSelection.Of(meta).type, Is.EqualTo(DeviceType.META));
        Assert.That(meta.bias!.device_type, Is.EqualTo(DeviceType.META));
    }

    [Test]
    public void TheTrainerRefusesAnUnknownDeviceBeforeWritingAnything()
    {
        var root = Directory.CreateTempSubdirectory("vimdense-device-").FullName;
        try
        {
            using var task = new ToyRegressionTask();
            var config = new ExperimentConfig
            {
                Optimizer = new OptimizerConfig { Lr = 0.01 },
                Schedule = new ScheduleConfig { MaxIters = 2 },
                Runtime = new RuntimeConfig { Device = "gpu" },
            };
            var work = Path.Combine(root, "work");
            var e = Assert.Throws<VimException>(() => new Trainer<(Tensor, Tensor)>(task, config, work, "cfg", TextWriter.Null).Run(null))!;
            Assert.That(e.Message, Does.Contain("runtime.device"));
            Assert.That(Directory.Exists(work), Is.False);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
