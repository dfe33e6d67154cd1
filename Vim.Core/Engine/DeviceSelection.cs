using System.Globalization;
using TorchSharp;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// The one place that turns <c>runtime.device</c> into a torch device. Accepted values: <c>cpu</c>,
/// <c>cuda</c> and <c>cuda:N</c>. A CUDA device needs a CUDA build of TorchSharp
/// (<c>dotnet build -p:TorchBackend=cuda</c>, package TorchSharp-cuda-linux), a driver, and N below the
/// number of GPUs libtorch sees. Under mpirun with plain <c>cuda</c>, each rank takes GPU
/// (local rank mod GPU count), local rank being <c>OMPI_COMM_WORLD_LOCAL_RANK</c> (its index among the
/// ranks of its machine), so several ranks on one machine spread over its GPUs; an explicit
/// <c>cuda:N</c> is taken as written on every rank.
/// </summary>
public static class DeviceSelection
{
    public const string ConfigKey = "runtime.device";

    /// <summary>The libtorch flavour this program was built against (the <c>TorchBackend</c> build property).</summary>
    public static string BuildBackend =>
#if TORCH_CUDA
        "TorchSharp-cuda (built with -p:TorchBackend=cuda)";
#else
        "TorchSharp-cpu (built with -p:TorchBackend=cpu)";
#endif

    /// <summary>The device for this process, checked against what this machine and build can offer.</summary>
    public static Device Resolve(RuntimeConfig runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        var (type, _) = Parse(runtime.Device);
        // CPU runs never touch the CUDA runtime.
        if (type == DeviceType.CPU) return CPU;
        int count = cuda.is_available() ? (int)cuda.device_count() : 0;
        return torch.device(DeviceType.CUDA, CudaIndex(runtime.Device, count, LocalRank()));
    }

    /// <summary>
    /// The GPU index a CUDA <paramref name="requested"/> device gets on a machine where libtorch sees
    /// <paramref name="cudaDevices"/> GPUs, for local rank <paramref name="localRank"/> (null outside mpirun).
    /// The decision without touching CUDA (a torch CUDA device object cannot even be made on a CPU build).
    /// </summary>
    public static int CudaIndex(string requested, int cudaDevices, int? localRank)
    {
        var (type, index) = Parse(requested);
        if (type != DeviceType.CUDA)
            throw new ArgumentException($"{ConfigKey} '{requested}' is not a CUDA device", nameof(requested));
        if (cudaDevices < 1)
            throw new VimException($"{ConfigKey} is '{requested}', but libtorch sees no CUDA device: this program uses {BuildBackend}. " +
                "For GPU training build with `dotnet build -p:TorchBackend=cuda` (TorchSharp-cuda-linux) on a machine with an NVIDIA driver, " +
                $"or set {ConfigKey}=cpu.");
        if (index is { } n)
        {
            if (n >= cudaDevices)
                throw new VimException($"{ConfigKey} is '{requested}', but this machine has {cudaDevices} CUDA device{(cudaDevices == 1 ? "" : "s")} " +
                    $"(cuda:0{(cudaDevices > 1 ? $"..cuda:{cudaDevices - 1}" : "")}).");
            return n;
        }
        return (localRank ?? 0) % cudaDevices;
    }

    /// <summary>Splits a runtime.device string into device type and optional index; anything else is a VimException naming the key.</summary>
    public static (DeviceType Type, int? Index) Parse(string? requested)
    {
        var text = requested?.Trim().ToLowerInvariant() ?? "";
        if (text == "cpu") return (DeviceType.CPU, null);
        if (text == "cuda") return (DeviceType.CUDA, null);
        if (text.StartsWith("cuda:", StringComparison.Ordinal))
        {
            var digits = text["cuda:".Length..];
            if (digits.Length > 0 && digits.All(char.IsAsciiDigit)
                && int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                return (DeviceType.CUDA, index);
        }
        throw new VimException($"{ConfigKey} must be cpu, cuda or cuda:N (N a GPU index), got '{requested}'");
    }

    /// <summary>Where a model lives: the device of its first parameter (or buffer); CPU for a model with neither.</summary>
    public static Device Of(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var (_, p) in model.named_parameters()) return p.device;
        foreach (var (_, b) in model.named_buffers()) return b.device;
        return CPU;
    }

    /// <summary>Moves <paramref name="model"/> (parameters and buffers) to <paramref name="device"/> unless it is there already.</summary>
    public static void MoveModel(nn.Module model, Device device)
    {
        var current = Of(model);
        if (current.type == device.type && current.index == device.index) return;
        model.to(device);
    }

    /// <summary>This rank's index among the ranks of its machine under mpirun (OMPI_COMM_WORLD_LOCAL_RANK), null otherwise.</summary>
    public static int? LocalRank() =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var r) && r >= 0
            ? r
            : null;
}
