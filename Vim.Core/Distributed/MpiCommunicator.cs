using System.Diagnostics;
using System.Globalization;
using static TorchSharp.torch;
using static Vim.Core.Distributed.MpiNative;
using Vim.Core.Native;

namespace Vim.Core.Distributed;

/// <summary>
/// The processes started by Open MPI's mpirun (one per GPU or per CPU socket), on one machine or many.
/// Every collective is issued non-blocking and then polled against a deadline: if it has not completed
/// within <see cref="Timeout"/> this rank prints which collective (and its sequence number) it waited
/// for and aborts the whole job with MPI_Abort, instead of blocking forever on a rank that died or hangs.
/// Only the thread that created the communicator may use it (MPI_THREAD_FUNNELED).
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    /// <summary>MPI counts are int; larger buffers go in chunks of this many elements.</summary>
    private const int MaxCount = 1 << 30;

    private static int s_instances;
    private readonly Handles _mpi;
    private readonly int _ownerThread = Environment.CurrentManagedThreadId;
    private long _sequence;
    private bool _disposed;

    /// <param name="timeout">Longest time one collective may take before the job is aborted.</param>
    public MpiCommunicator(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
            throw new VimException($"runtime.collective_timeout_s must be > 0, got {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)}");
        // MPI can be initialised once per process, and not again after MPI_Finalize.
        if (Interlocked.Increment(ref s_instances) != 1)
            throw new InvalidOperationException("MpiCommunicator: MPI can be initialised once per process; share the one communicator");
        Timeout = timeout;
        _mpi = Predefined;
        int flag = 0, provided = 0, rank = 0, size = 0;
        Check(MPI_Initialized(&flag), "MPI_Initialized");
        if (flag == 0)
            Check(MPI_Init_thread(null, null, ThreadFunneled, &provided), "MPI_Init_thread");
        Check(MPI_Comm_rank(_mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(MPI_Comm_size(_mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
        if (Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is { } envSize && envSize != size.ToString(CultureInfo.InvariantCulture))
            throw new VimException($"OMPI_COMM_WORLD_SIZE is {envSize} but MPI reports a world of {size}: the process was not started by the mpirun of this Open MPI");
    }

    public int Rank { get; }

    public int WorldSize { get; }

    public TimeSpan Timeout { get; }

    public void AllReduceSum(Tensor tensor)
    {
        CollectiveTensor.RequireSummable(tensor, nameof(AllReduceSum));
        var datatype = tensor.dtype switch
        {
            ScalarType.Float32 => _mpi.Float,
            ScalarType.Float64 => _mpi.Double,
            ScalarType.Int64 => _mpi.Int64,
            _ => _mpi.Int,
        };
        long elementSize = tensor.ElementSize;
        var data = (byte*)TensorMemory.Of(tensor);
        for (long done = 0, total = tensor.NumberOfElements; done < total; done += MaxCount)
        {
            int count = (int)Math.Min(MaxCount, total - done);
            IntPtr request;
            Check(MPI_Iallreduce(InPlace, data + done * elementSize, count, datatype, _mpi.OpSum, _mpi.CommWorld, &request), "MPI_Iallreduce");
            Wait(&request, $"all-reduce of {FormatBytes(count * elementSize)}");
        }
    }

    public void Broadcast(Tensor tensor, int root = 0)
    {
        CollectiveTensor.RequireCpuContiguous(tensor, nameof(Broadcast));
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"broadcast root must be a rank of the world (0..{WorldSize - 1})");
        var data = (byte*)TensorMemory.Of(tensor);
        for (long done = 0, total = CollectiveTensor.Bytes(tensor); done < total; done += MaxCount)
        {
            int count = (int)Math.Min(MaxCount, total - done);
            IntPtr request;
            Check(MPI_Ibcast(data + done, count, _mpi.Byte, root, _mpi.CommWorld, &request), "MPI_Ibcast");
            Wait(&request, $"broadcast of {FormatBytes(count)} from rank {root}");
        }
    }

    public void Barrier()
    {
        IntPtr request;
        Check(MPI_Ibarrier(_mpi.CommWorld, &request), "MPI_Ibarrier");
        Wait(&request, "barrier");
    }

    public IReadOnlyList<byte[]> AllGather(byte[] data)
    {
        var counts = new int[WorldSize];
        int mine = data.Length;
        fixed (int* countsPtr = counts)
        {
            IntPtr request;
            Check(MPI_Iallgather(&mine, 1, _mpi.Int, countsPtr, 1, _mpi.Int, _mpi.CommWorld, &request), "MPI_Iallgather");
            Wait(&request, "all-gather of payload sizes");
        }
        var (displacements, gathered) = ReceiveLayout(counts, "all-gather");
        fixed (byte* send = data)
        fixed (byte* receive = gathered)
        fixed (int* countsPtr = counts)
        fixed (int* displacementsPtr = displacements)
        {
            IntPtr request;
            Check(MPI_Iallgatherv(send, mine, _mpi.Byte, receive, countsPtr, displacementsPtr, _mpi.Byte, _mpi.CommWorld, &request), "MPI_Iallgatherv");
            Wait(&request, $"all-gather of {FormatBytes(gathered.Length)}");
        }
        return Split(gathered, counts, displacements);
    }

    public IReadOnlyList<byte[]> Gather(byte[] data, int root = 0)
    {
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"gather root must be a rank of the world (0..{WorldSize - 1})");
        bool isRoot = Rank == root;
        // Only the root's receive arguments are read by MPI; the others pass empty arrays.
        var counts = new int[isRoot ? WorldSize : 0];
        int mine = data.Length;
        fixed (int* countsPtr = counts)
        {
            IntPtr request;
            Check(MPI_Igather(&mine, 1, _mpi.Int, countsPtr, 1, _mpi.Int, root, _mpi.CommWorld, &request), "MPI_Igather");
            Wait(&request, $"gather of payload sizes to rank {root}");
        }
        var (displacements, gathered) = isRoot ? ReceiveLayout(counts, "gather") : (Array.Empty<int>(), Array.Empty<byte>());
        fixed (byte* send = data)
        fixed (byte* receive = gathered)
        fixed (int* countsPtr = counts)
        fixed (int* displacementsPtr = displacements)
        {
            IntPtr request;
            Check(MPI_Igatherv(send, mine, _mpi.Byte, receive, countsPtr, displacementsPtr, _mpi.Byte, root, _mpi.CommWorld, &request), "MPI_Igatherv");
            Wait(&request, isRoot ? $"gather of {FormatBytes(gathered.Length)} to rank {root}" : $"gather of {FormatBytes(mine)} to rank {root}");
        }
        return isRoot ? Split(gathered, counts, displacements) : [];
    }

    /// <summary>Where each rank's payload lands in one receive buffer (MPI counts and displacements are ints).</summary>
    private static (int[] Displacements, byte[] Buffer) ReceiveLayout(int[] counts, string collective)
    {
        var displacements = new int[counts.Length];
        long total = 0;
        for (int r = 0; r < counts.Length; r++)
        {
            if (total + counts[r] > int.MaxValue)
                throw new VimException($"{collective}: {FormatBytes(total + counts[r])} in all is too much for one gather; it is meant for small payloads");
            displacements[r] = (int)total;
            total += counts[r];
        }
        return (displacements, new byte[total]);
    }

    private static List<byte[]> Split(byte[] gathered, int[] counts, int[] displacements) =>
        Enumerable.Range(0, counts.Length).Select(r => gathered.AsSpan(displacements[r], counts[r]).ToArray()).ToList();

    /// <summary>Finalises MPI; the process can no longer communicate afterwards.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        int finalized = 0;
        if (MPI_Finalized(&finalized) == Success && finalized == 0)
            Check(MPI_Finalize(), "MPI_Finalize");
    }

    /// <summary>Polls the request until it completes or the deadline passes; the deadline aborts the job.</summary>
    private void Wait(IntPtr* request, string what)
    {
        long sequence = ++_sequence;
        var clock = Stopwatch.StartNew();
        int done = 0;
        while (true)
        {
            Check(MPI_Test(request, &done, null), "MPI_Test");
            if (done != 0) return;
            var elapsed = clock.Elapsed;
            if (elapsed > Timeout)
                AbortJob($"collective #{sequence.ToString(CultureInfo.InvariantCulture)} ({what}) has not completed after " +
                    $"{elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s (runtime.collective_timeout_s = " +
                    $"{Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)}): another rank has died, hangs, or is at a different step");
            // Polling drives MPI's progress (a large all-reduce needs many polls: sleeping between them
            // after 50 ms made a 29 MiB gradient average ~1.5x slower here), so poll eagerly for a second;
            // a longer wait (a rank writing a checkpoint) should not steal a core from the rank waited for.
            if (elapsed.TotalMilliseconds < 1000) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    /// <summary>Prints why and ends every process of the job (MPI_Abort).</summary>
    public void AbortJob(string reason)
    {
        var message = $"vimdense rank {Rank}/{WorldSize}: {reason}; aborting the job";
        Console.Error.WriteLine(message);
        Console.Error.Flush();
        MPI_Abort(_mpi.CommWorld, 3);
        // MPI_Abort does not return on Open MPI; if some implementation did, do not continue in a broken world.
        Environment.FailFast(message);
    }

    private void Check(int code, string function)
    {
        if (_ownerThread != Environment.CurrentManagedThreadId)
            throw new InvalidOperationException($"MpiCommunicator: {function} called from thread {Environment.CurrentManagedThreadId}, but MPI was initialised funnelled on thread {_ownerThread}");
        if (code != Success)
            throw new VimException($"{function} failed on rank {Rank}: {ErrorString(code)} (code {code})");
    }

    private static string FormatBytes(long bytes) => bytes >= 1 << 20
        ? (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB"
        : bytes.ToString(CultureInfo.InvariantCulture) + " B";
}
