using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>Picks the communicator for this process from how it was launched and the runtime config.</summary>
public static class Communicators
{
    /// <summary>True when mpirun (Open MPI) started this process as one rank of a job.</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>How many processes mpirun started for this job (OMPI_COMM_WORLD_SIZE), read without initialising MPI; 1 outside mpirun.</summary>
    public static int MpirunProcesses =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int size)
            ? size
            : 1;

    /// <summary>Which backend a multi-process job uses, and, where that is not what was asked for, why.</summary>
    public sealed record Choice(DistBackend Backend, string? Note);

    /// <summary>
    /// The backend for runtime.device <paramref name="device"/> and runtime.dist_backend
    /// <paramref name="requested"/>, given whether NCCL loads here (<paramref name="ncclProblem"/> null)
    /// or why not. Never fails: a job that cannot use NCCL runs on MPI and says why.
    /// </summary>
    public static Choice Choose(string device, DistBackend requested, string? ncclProblem)
    {
        bool cuda = string.Equals(device, "cuda", StringComparison.OrdinalIgnoreCase) || device.StartsWith("cuda:", StringComparison.OrdinalIgnoreCase);
        return requested switch
        {
            DistBackend.Mpi => new Choice(DistBackend.Mpi, null),
            DistBackend.Nccl when !cuda => new Choice(DistBackend.Mpi,
                $"runtime.dist_backend is nccl but runtime.device is {device}: NCCL moves GPU memory only; using MPI"),
            DistBackend.Nccl or DistBackend.Auto when cuda && ncclProblem is not null => new Choice(DistBackend.Mpi,
                $"runtime.device is cuda{(requested == DistBackend.Nccl ? " and runtime.dist_backend is nccl" : "")}, but {ncclProblem}; " +
                "using MPI (GPU tensors are staged through host memory)"),
            DistBackend.Nccl or DistBackend.Auto when cuda => new Choice(DistBackend.Nccl, null),
            _ => new Choice(DistBackend.Mpi, null),
        };
    }

    /// <summary>
    /// Outside mpirun the single-process communicator. Under mpirun (OMPI_COMM_WORLD_SIZE /
    /// OMPI_COMM_WORLD_RANK set) an <see cref="MpiCommunicator"/>, or an <see cref="NcclCommunicator"/>
    /// on it (see <see cref="Choose"/>; rank 0 prints why when NCCL was wanted but cannot run).
    /// Create it once per process, at start-up, and dispose it at exit.
    /// </summary>
    public static ICommunicator FromEnvironment(RuntimeConfig runtime)
    {
        if (!LaunchedByMpirun) return SingleProcessCommunicator.Instance;
        var mpi = new MpiCommunicator(TimeSpan.FromSeconds(runtime.CollectiveTimeoutS));
        // Only look for NCCL when it could be used, so CPU jobs never touch CUDA libraries.
        bool wantsNccl = runtime.DistBackend != DistBackend.Mpi && runtime.Device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase);
        string? problem = null;
        if (wantsNccl) NcclNative.TryLoad(out _, out problem);
        var choice = Choose(runtime.Device, runtime.DistBackend, problem);
        if (choice.Note is not null && mpi.Rank == 0)
            Console.Error.WriteLine($"distributed: {choice.Note}");
        if (choice.Backend != DistBackend.Nccl) return mpi;
        try
        {
            return new NcclCommunicator(mpi, LocalDevice(runtime));
        }
        catch
        {
            mpi.Dispose();
            throw;
        }
    }

    /// <summary>The GPU the trainer puts the model on (see <see cref="Engine.DeviceSelection"/>), so NCCL reduces where the gradients are.</summary>
    private static int LocalDevice(RuntimeConfig runtime) => Engine.DeviceSelection.Resolve(runtime).index;
}
