using Vim.Core.Config;

namespace Vim.Core.Distributed;

/// <summary>Picks the communicator for this process from how it was launched.</summary>
public static class Communicators
{
    /// <summary>True when mpirun (Open MPI) started this process as one rank of a job.</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>
    /// An <see cref="MpiCommunicator"/> under mpirun (OMPI_COMM_WORLD_SIZE / OMPI_COMM_WORLD_RANK set),
    /// otherwise the single-process one. Create it once per process, at start-up, and dispose it at exit.
    /// </summary>
    public static ICommunicator FromEnvironment(RuntimeConfig runtime) =>
        LaunchedByMpirun ? new MpiCommunicator(TimeSpan.FromSeconds(runtime.CollectiveTimeoutS)) : SingleProcessCommunicator.Instance;
}
