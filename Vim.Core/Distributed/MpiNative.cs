using System.Runtime.InteropServices;

namespace Vim.Core.Distributed;

/// <summary>
/// The slice of Open MPI's C ABI (libmpi.so.40) that <see cref="MpiCommunicator"/> uses. Open MPI's
/// predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are the addresses of exported globals,
/// so they are resolved with <see cref="NativeLibrary.GetExport"/> rather than being constants.
/// </summary>
internal static unsafe partial class MpiNative
{
    public const string Library = "libmpi.so.40";
    public const int Success = 0;
    public const int ThreadFunneled = 1;

    /// <summary>Open MPI's MPI_IN_PLACE is ((void*)1).</summary>
    public static readonly void* InPlace = (void*)1;

    private static readonly Lazy<Handles> Loaded = new(Load);

    public static Handles Predefined => Loaded.Value;

    public sealed record Handles(IntPtr CommWorld, IntPtr Float, IntPtr Double, IntPtr Int64, IntPtr Byte, IntPtr Int, IntPtr OpSum);

    private static Handles Load()
    {
        if (!NativeLibrary.TryLoad(Library, out var lib))
            throw new VimException($"multi-process run (OMPI_COMM_WORLD_SIZE is set) but Open MPI's {Library} cannot be loaded: " +
                "install it (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) on every machine of the job");
        IntPtr Symbol(string name) => NativeLibrary.TryGetExport(lib, name, out var address)
            ? address
            : throw new VimException($"{Library} does not export '{name}': it is not Open MPI 4/5's C ABI (MPICH and others are not supported)");
        return new Handles(Symbol("ompi_mpi_comm_world"), Symbol("ompi_mpi_float"), Symbol("ompi_mpi_double"), Symbol("ompi_mpi_int64_t"), Symbol("ompi_mpi_byte"), Symbol("ompi_mpi_int"), Symbol("ompi_mpi_op_sum"));
    }

    [LibraryImport(Library)]
    public static partial int MPI_Initialized(int* flag);

    [LibraryImport(Library)]
    public static partial int MPI_Finalized(int* flag);

    [LibraryImport(Library)]
    public static partial int MPI_Init_thread(int* argc, byte*** argv, int required, int* provided);

    [LibraryImport(Library)]
    public static partial int MPI_Finalize();

    [LibraryImport(Library)]
    public static partial int MPI_Abort(IntPtr comm, int errorCode);

    [LibraryImport(Library)]
    public static partial int MPI_Comm_rank(IntPtr comm, int* rank);

    [LibraryImport(Library)]
    public static partial int MPI_Comm_size(IntPtr comm, int* size);

    [LibraryImport(Library)]
    public static partial int MPI_Iallreduce(void* send, void* receive, int count, IntPtr datatype, IntPtr op, IntPtr comm, IntPtr* request);

    [LibraryImport(Library)]
    public static partial int MPI_Ibcast(void* buffer, int count, IntPtr datatype, int root, IntPtr comm, IntPtr* request);

    [LibraryImport(Library)]
    public static partial int MPI_Ibarrier(IntPtr comm, IntPtr* request);

    [LibraryImport(Library)]
    public static partial int MPI_Iallgather(void* send, int sendCount, IntPtr sendType, void* receive, int receiveCount, IntPtr receiveType, IntPtr comm, IntPtr* request);

    [LibraryImport(Library)]
    public static partial int MPI_Iallgatherv(void* send, int sendCount, IntPtr sendType, void* receive, int* receiveCounts, int* displacements, IntPtr receiveType, IntPtr comm, IntPtr* request);

    [LibraryImport(Library)]
    public static partial int MPI_Igather(void* send, int sendCount, IntPtr sendType, void* receive, int receiveCount, IntPtr receiveType, int root, IntPtr comm, IntPtr* request);

    [LibraryImport(Library)]
    public static partial int MPI_Igatherv(void* send, int sendCount, IntPtr sendType, void* receive, int* receiveCounts, int* displacements, IntPtr receiveType, int root, IntPtr comm, IntPtr* request);

    /// <summary>Status is MPI_STATUS_IGNORE (null) everywhere we call it.</summary>
    [LibraryImport(Library)]
    public static partial int MPI_Test(IntPtr* request, int* flag, void* status);

    [LibraryImport(Library)]
    public static partial int MPI_Error_string(int errorCode, byte* text, int* length);

    public static string ErrorString(int code)
    {
        var text = stackalloc byte[512]; // MPI_MAX_ERROR_STRING is 256 in Open MPI
        int length = 0;
        return MPI_Error_string(code, text, &length) == Success ? System.Text.Encoding.ASCII.GetString(text, length) : $"MPI error {code}";
    }
}
