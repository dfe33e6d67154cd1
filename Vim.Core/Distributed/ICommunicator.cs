using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>
/// The collectives data-parallel training needs, over the processes of one job. Every rank must call
/// the same collectives in the same order with matching sizes; a collective that does not complete
/// within <see cref="Timeout"/> ends the whole job with a message naming it (a rank that died or hangs
/// must not leave the others blocked forever). Tensors are CPU and contiguous; their memory is used
/// directly.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's index, 0 ≤ Rank &lt; WorldSize; rank 0 alone writes files and the console.</summary>
    int Rank { get; }

    int WorldSize { get; }

    /// <summary>How long one collective may take before the job is aborted.</summary>
    TimeSpan Timeout { get; }

    /// <summary>
    /// Replaces <paramref name="tensor"/> on every rank by the element-wise sum over ranks. float32
    /// (gradients), float64 and int64/int32 (statistics and counts that must stay exact, e.g. a
    /// confusion matrix whose counts exceed float32's 2^24).
    /// </summary>
    void AllReduceSum(Tensor tensor);

    /// <summary>Replaces <paramref name="tensor"/> (float32 or float64) on every rank by the element-wise mean over ranks.</summary>
    void AllReduceAverage(Tensor tensor)
    {
        if (!tensor.is_floating_point())
            throw new ArgumentException($"{nameof(AllReduceAverage)}: a mean needs a floating-point tensor, got {tensor.dtype} (sum integer counts with AllReduceSum)");
        AllReduceSum(tensor);
        if (WorldSize > 1)
            tensor.div_(WorldSize);
    }

    /// <summary>Copies <paramref name="tensor"/> (any dtype; same shape on every rank) from <paramref name="root"/> into every rank's tensor.</summary>
    void Broadcast(Tensor tensor, int root = 0);

    /// <summary>Whether tensors on <paramref name="device"/> can be reduced and broadcast in place (MPI: CPU only; NCCL: CPU and CUDA). Others are staged through CPU memory.</summary>
    bool CanReduceOn(DeviceType device) => device == DeviceType.CPU;

    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();

    /// <summary>
    /// Prints <paramref name="reason"/> and ends every process of the job at once (MPI_Abort); does not return. A single
    /// process has no other rank to free and does nothing: its caller carries on with the error.
    /// </summary>
    void AbortJob(string reason)
    {
    }

    /// <summary>Every rank's <paramref name="data"/> (sizes may differ), indexed by rank, on every rank. Meant for small payloads (metrics, results).</summary>
    IReadOnlyList<byte[]> AllGather(byte[] data);

    /// <summary>
    /// Every rank's <paramref name="data"/> (sizes may differ), indexed by rank, on <paramref name="root"/> alone; the
    /// other ranks get an empty list. For results only one rank consumes (detections evaluated on rank 0).
    /// </summary>
    IReadOnlyList<byte[]> Gather(byte[] data, int root = 0);
}
