using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;
using static Vim.Core.Distributed.NcclNative;
using Vim.Core.Native;

namespace Vim.Core.Distributed;

/// <summary>
/// Collectives on GPU memory through NCCL, one process per GPU: all-reduce and broadcast of CUDA
/// tensors go to NCCL, everything else (CPU tensors, barrier, all-gather of metrics) to the MPI
/// communicator the job was started with, which also carries NCCL's unique id from rank 0 to the
/// others. TorchSharp exposes no CUDA stream handle and never changes the current stream, so its ops
/// run on the legacy default stream (0); NCCL is launched on that stream too, which orders it after the
/// kernels that produced the data, and each collective is then waited for by polling cudaStreamQuery
/// and ncclCommGetAsyncError against <see cref="Timeout"/> (a rank that died ends the job with
/// ncclCommAbort and MPI_Abort instead of a hang).
/// </summary>
public sealed unsafe class NcclCommunicator : ICommunicator
{
    private readonly ICommunicator _host;
    private readonly Api _nccl;
    private readonly IntPtr _comm;
    private readonly int _device;
    private long _sequence;
    private bool _disposed;

    /// <param name="host">The job's MPI communicator (owned once construction succeeds: disposed with this one).</param>
    /// <param name="device">The CUDA device of this rank (e.g. its local rank on the machine).</param>
    public NcclCommunicator(ICommunicator host, int device)
    {
        if (!TryLoad(out var api, out var problem))
            throw new VimException($"runtime.dist_backend nccl: {problem}");
        _nccl = api!;
        _host = host;
        _device = device;
        Check(_nccl.CudaSetDevice(device), $"cudaSetDevice({device})", cuda: true);
        // Rank 0 makes the id; the others receive it through MPI (host memory).
        using var id = zeros(UniqueIdBytes, dtype: ScalarType.Byte);
        var bytes = (UniqueId*)TensorMemory.Of(id);
        if (host.Rank == 0) Check(_nccl.GetUniqueId(bytes), "ncclGetUniqueId");
        host.Broadcast(id);
        IntPtr comm;
        Check(_nccl.CommInitRank(&comm, host.WorldSize, *bytes, host.Rank), $"ncclCommInitRank(rank {host.Rank} of {host.WorldSize})");
        _comm = comm;
    }

    public int Rank => _host.Rank;

    public int WorldSize => _host.WorldSize;

    public TimeSpan Timeout => _host.Timeout;

    /// <summary>NCCL's version code (e.g. 22105 for 2.21.5).</summary>
    public int NcclVersion => _nccl.Version;

    public bool CanReduceOn(DeviceType device) => device is DeviceType.CPU or DeviceType.CUDA;

    public void AllReduceSum(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CUDA)
        {
            _host.AllReduceSum(tensor);
            return;
        }
        var type = RequireCudaContiguous(tensor, nameof(AllReduceSum));
        var data = (void*)TensorMemory.Of(tensor);
        Check(_nccl.AllReduce(data, data, (nuint)tensor.NumberOfElements, (int)type, Sum, _comm, IntPtr.Zero), "ncclAllReduce");
        Wait($"all-reduce of {CollectiveTensor.Bytes(tensor)} B on cuda:{_device}");
    }

    public void Broadcast(Tensor tensor, int root = 0)
    {
        if (tensor.device_type != DeviceType.CUDA)
        {
            _host.Broadcast(tensor, root);
            return;
        }
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"broadcast root must be a rank of the world (0..{WorldSize - 1})");
        RequireCudaContiguous(tensor, nameof(Broadcast));
        // Any dtype moves as bytes.
        var data = (void*)TensorMemory.Of(tensor);
        Check(_nccl.Broadcast(data, data, (nuint)CollectiveTensor.Bytes(tensor), (int)DataType.Uint8, root, _comm, IntPtr.Zero), "ncclBroadcast");
        Wait($"broadcast of {CollectiveTensor.Bytes(tensor)} B from rank {root} on cuda:{_device}");
    }

    public void Barrier() => _host.Barrier();

    public IReadOnlyList<byte[]> AllGather(byte[] data) => _host.AllGather(data);

    public IReadOnlyList<byte[]> Gather(byte[] data, int root = 0) => _host.Gather(data, root);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _nccl.CommDestroy(_comm);
        _host.Dispose();
    }

    private static DataType RequireCudaContiguous(Tensor tensor, string operation)
    {
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{operation}: the tensor (shape [{string.Join(", ", tensor.shape)}]) is not contiguous");
        return tensor.dtype switch
        {
            ScalarType.Float32 => DataType.Float32,
            ScalarType.Float64 => DataType.Float64,
            ScalarType.Int64 => DataType.Int64,
            ScalarType.Int32 => DataType.Int32,
            ScalarType.Float16 => DataType.Float16,
            ScalarType.BFloat16 => DataType.BFloat16,
            ScalarType.Byte => DataType.Uint8,
            ScalarType.Int8 => DataType.Int8,
            _ => throw new ArgumentException($"{operation}: NCCL cannot reduce {tensor.dtype} tensors"),
        };
    }

    /// <summary>Polls the default stream until the collective has run, or aborts the job at the deadline or on an NCCL error.</summary>
    private void Wait(string what)
    {
        long sequence = ++_sequence;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            int query = _nccl.CudaStreamQuery(IntPtr.Zero);
            if (query == CudaSuccess) return;
            if (query != CudaErrorNotReady) Check(query, $"cudaStreamQuery after {what}", cuda: true);
            int asyncError = Success;
            Check(_nccl.CommGetAsyncError(_comm, &asyncError), "ncclCommGetAsyncError");
            if (asyncError is not (Success or InProgress))
                AbortJob($"collective #{sequence} ({what}) failed: {_nccl.NcclError(asyncError)}");
            if (clock.Elapsed > Timeout)
                AbortJob($"collective #{sequence.ToString(CultureInfo.InvariantCulture)} ({what}) has not completed after " +
                    $"{clock.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s (runtime.collective_timeout_s = " +
                    $"{Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)}): another rank has died, hangs, or is at a different step");
            if (clock.ElapsedMilliseconds < 50) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    public void AbortJob(string reason)
    {
        Console.Error.WriteLine($"vimdense rank {Rank}/{WorldSize} (NCCL): {reason}; aborting the job");
        Console.Error.Flush();
        // Frees the GPU side first (ncclCommAbort does not wait for peers), then MPI ends every process.
        _nccl.CommAbort(_comm);
        _host.AbortJob(reason);
        Environment.FailFast(reason);
    }

    private void Check(int code, string function, bool cuda = false)
    {
        if (code == Success) return;
        var text = cuda ? _nccl.CudaError(code) : _nccl.NcclError(code);
        throw new VimException($"{function} failed on rank {Rank}: {text} ({(cuda ? "CUDA" : "NCCL")} error {code})");
    }
}
