using System.Runtime.InteropServices;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;

namespace Vim.Tests.Distributed;

/// <summary>Which backend an mpirun job gets, and the NCCL communicator where its library is missing.</summary>
public class CommunicatorSelectionTests
{
    private const string Missing = "libnccl.so.2 cannot be loaded (not installed)";

    [TestCase("cpu", DistBackend.Auto, null)]
    [TestCase("cpu", DistBackend.Auto, Missing)]
    [TestCase("cpu", DistBackend.Mpi, null)]
    [TestCase("cuda", DistBackend.Mpi, null)]
    public void MpiWithoutANoteWhereNcclWasNotWanted(string device, DistBackend requested, string? problem)
    {
        var choice = Communicators.Choose(device, requested, problem);
        Assert.That(choice.Backend, Is.EqualTo(DistBackend.Mpi));
        Assert.That(choice.Note, Is.Null);
    }

    [TestCase("cuda", DistBackend.Auto)]
    [TestCase("cuda", DistBackend.Nccl)]
    [TestCase("cuda:1", DistBackend.Nccl)]
    public void NcclOnCudaWhereItLoads(string device, DistBackend requested)
    {
        var choice = Communicators.Choose(device, requested, ncclProblem: null);
        Assert.That(choice.Backend, Is.EqualTo(DistBackend.Nccl));
        Assert.That(choice.Note, Is.Null);
    }

    [Test]
    public void NcclRequestedButUnusableFallsBackToMpiAndSaysWhy()
    {
        var onCpu = Communicators.Choose("cpu", DistBackend.Nccl, ncclProblem: null);
        Assert.That(onCpu.Backend, Is.EqualTo(DistBackend.Mpi));
        Assert.That(onCpu.Note, Does.Contain("runtime.dist_backend is nccl but runtime.device is cpu").And.Contain("using MPI"));

        var missing = Communicators.Choose("cuda", DistBackend.Nccl, Missing);
        Assert.That(missing.Backend, Is.EqualTo(DistBackend.Mpi));
        Assert.That(missing.Note, Does.Contain("runtime.device is cuda and runtime.dist_backend is nccl").And.Contain(Missing).And.Contain("using MPI"));

        var auto = Communicators.Choose("cuda", DistBackend.Auto, Missing);
        Assert.That(auto.Backend, Is.EqualTo(DistBackend.Mpi));
        Assert.That(auto.Note, Does.StartWith("runtime.device is cuda, but libnccl.so.2"));
    }

    [Test]
    public void TheNcclCommunicatorNamesTheMissingLibraryAndHowToInstallIt()
    {
        Assume.That(NativeLibrary.TryLoad("libnccl.so.2", out _), Is.False, "NCCL is installed on this machine");
        var e = Assert.Throws<VimException>(() => new NcclCommunicator(SingleProcessCommunicator.Instance, device: 0))!;
        Assert.That(e.Message, Does.StartWith("runtime.dist_backend nccl: libnccl.so.2 cannot be loaded").And.Contain("apt-get install libnccl2"));
    }

    [Test]
    public void TheBackendIsAConfigKey()
    {
        var (config, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml"),
            ["runtime.dist_backend=nccl", "runtime.device=cuda"]);
        Assert.That(config.Runtime.DistBackend, Is.EqualTo(DistBackend.Nccl));
        Assert.That(new RuntimeConfig().DistBackend, Is.EqualTo(DistBackend.Auto));
    }
}
