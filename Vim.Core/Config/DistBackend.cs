namespace Vim.Core.Config;

/// <summary>What moves tensors between the processes of an mpirun job.</summary>
public enum DistBackend
{
    /// <summary>NCCL when runtime.device is cuda and libnccl.so.2 loads, MPI otherwise.</summary>
    Auto,

    /// <summary>Open MPI for everything (host memory).</summary>
    Mpi,

    /// <summary>NCCL for GPU tensors (MPI still starts the job and carries CPU tensors); falls back to MPI, saying why, where it cannot run.</summary>
    Nccl,
}
