using System.Runtime.InteropServices;

namespace Vim.Core.Distributed;

/// <summary>
/// The slice of NCCL 2's C API (nccl.h) and of the CUDA runtime that <see cref="NcclCommunicator"/>
/// uses, bound at run time: libnccl.so.2 is packaged neither by Debian nor by TorchSharp, so the
/// program must start (and train on MPI) where it is absent. <see cref="TryLoad"/> says why it is not
/// usable; nothing is resolved until then.
/// </summary>
internal static unsafe class NcclNative
{
    public const string Library = "libnccl.so.2";
    public const int UniqueIdBytes = 128; // NCCL_UNIQUE_ID_BYTES

    // ncclResult_t
    public const int Success = 0;
    public const int InProgress = 7;

    // ncclRedOp_t
    public const int Sum = 0;

    // cudaError_t
    public const int CudaSuccess = 0;
    public const int CudaErrorNotReady = 600;

    /// <summary>ncclDataType_t values (nccl.h).</summary>
    public enum DataType
    {
        Int8 = 0,
        Uint8 = 1,
        Int32 = 2,
        Int64 = 4,
        Float16 = 6,
        Float32 = 7,
        Float64 = 8,
        BFloat16 = 9,
    }

    /// <summary>ncclUniqueId: an opaque 128-byte blob, passed by value to ncclCommInitRank.</summary>
    [StructLayout(LayoutKind.Sequential, Size = UniqueIdBytes)]
    public struct UniqueId
    {
        public fixed byte Internal[UniqueIdBytes];
    }

    /// <summary>The entry points, resolved once.</summary>
    public sealed class Api
    {
        public required delegate* unmanaged<int*, int> GetVersion { get; init; }
        public required delegate* unmanaged<UniqueId*, int> GetUniqueId { get; init; }
        public required delegate* unmanaged<IntPtr*, int, UniqueId, int, int> CommInitRank { get; init; }
        public required delegate* unmanaged<IntPtr, int> CommDestroy { get; init; }
        public required delegate* unmanaged<IntPtr, int> CommAbort { get; init; }
        public required delegate* unmanaged<IntPtr, int*, int> CommGetAsyncError { get; init; }
        public required delegate* unmanaged<int, byte*> GetErrorString { get; init; }
        public required delegate* unmanaged<void*, void*, nuint, int, int, IntPtr, IntPtr, int> AllReduce { get; init; }
        public required delegate* unmanaged<void*, void*, nuint, int, int, IntPtr, IntPtr, int> Broadcast { get; init; }

        // CUDA runtime: device selection and non-blocking completion checks of the stream NCCL runs on.
        public required delegate* unmanaged<int, int> CudaSetDevice { get; init; }
        public required delegate* unmanaged<IntPtr, int> CudaStreamQuery { get; init; }
        public required delegate* unmanaged<int, byte*> CudaGetErrorString { get; init; }

        public int Version { get; set; }

        public string NcclError(int code) => Marshal.PtrToStringAnsi((IntPtr)GetErrorString(code)) ?? $"NCCL error {code}";

        public string CudaError(int code) => Marshal.PtrToStringAnsi((IntPtr)CudaGetErrorString(code)) ?? $"CUDA error {code}";
    }

    private static readonly Lazy<(Api? Api, string? Problem)> Loaded = new(Load);

    /// <summary>The CUDA runtimes a CUDA build of libtorch (TorchSharp-cuda) or a CUDA toolkit install provides.</summary>
    private static readonly string[] CudaRuntimes = ["libcudart.so.12", "libcudart.so.11.0", "libcudart.so"];

    /// <summary>NCCL's API, or null and why it cannot be used here.</summary>
    public static bool TryLoad(out Api? api, out string? problem)
    {
        (api, problem) = Loaded.Value;
        return api is not null;
    }

    private static (Api?, string?) Load()
    {
        if (!NativeLibrary.TryLoad(Library, out var nccl))
            return (null, $"{Library} cannot be loaded (not installed, or not on LD_LIBRARY_PATH): install NCCL 2 on every machine " +
                "(NVIDIA's CUDA apt repository: apt-get install libnccl2; or pip install nvidia-nccl-cu12 and add its lib/ folder to LD_LIBRARY_PATH)");
        IntPtr cudart = IntPtr.Zero;
        if (!CudaRuntimes.Any(name => NativeLibrary.TryLoad(name, out cudart)))
            return (null, $"the CUDA runtime ({string.Join(", ", CudaRuntimes)}) cannot be loaded; NCCL needs it to select the device and wait for its streams");
        var missing = new List<string>();
        IntPtr Symbol(IntPtr library, string name)
        {
            if (NativeLibrary.TryGetExport(library, name, out var address)) return address;
            missing.Add(name);
            return IntPtr.Zero;
        }
        var api = new Api
        {
            GetVersion = (delegate* unmanaged<int*, int>)Symbol(nccl, "ncclGetVersion"),
            GetUniqueId = (delegate* unmanaged<UniqueId*, int>)Symbol(nccl, "ncclGetUniqueId"),
            CommInitRank = (delegate* unmanaged<IntPtr*, int, UniqueId, int, int>)Symbol(nccl, "ncclCommInitRank"),
            CommDestroy = (delegate* unmanaged<IntPtr, int>)Symbol(nccl, "ncclCommDestroy"),
            CommAbort = (delegate* unmanaged<IntPtr, int>)Symbol(nccl, "ncclCommAbort"),
            CommGetAsyncError = (delegate* unmanaged<IntPtr, int*, int>)Symbol(nccl, "ncclCommGetAsyncError"),
            GetErrorString = (delegate* unmanaged<int, byte*>)Symbol(nccl, "ncclGetErrorString"),
            AllReduce = (delegate* unmanaged<void*, void*, nuint, int, int, IntPtr, IntPtr, int>)Symbol(nccl, "ncclAllReduce"),
            Broadcast = (delegate* unmanaged<void*, void*, nuint, int, int, IntPtr, IntPtr, int>)Symbol(nccl, "ncclBroadcast"),
            CudaSetDevice = (delegate* unmanaged<int, int>)Symbol(cudart, "cudaSetDevice"),
            CudaStreamQuery = (delegate* unmanaged<IntPtr, int>)Symbol(cudart, "cudaStreamQuery"),
            CudaGetErrorString = (delegate* unmanaged<int, byte*>)Symbol(cudart, "cudaGetErrorString"),
        };
        if (missing.Count > 0)
            return (null, $"{Library} or the CUDA runtime lacks {string.Join(", ", missing)}: NCCL ≥ 2.7 (ncclBroadcast, ncclCommGetAsyncError) is needed");
        int version = 0;
        api.GetVersion(&version);
        api.Version = version;
        return (api, null);
    }
}
