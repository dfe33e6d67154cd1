using System.CommandLine;
using System.Runtime.InteropServices;
using TorchSharp;
using Vim.Core.Native;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>`vim env`: what this installation runs on, and a check that libtorch and our kernels load.</summary>
public static class EnvCommand
{
    public static Command Create()
    {
        var command = new Command("env", "Print the runtime environment and check that libtorch and the native kernels load.");
        command.SetAction(_ =>
        {
            Console.WriteLine($"dotnet: {RuntimeInformation.FrameworkDescription} ({RuntimeInformation.OSDescription})");
            Console.WriteLine($"TorchSharp: {typeof(torch).Assembly.GetName().Version}");
            using (NewDisposeScope())
            {
                // A real op proves the native library loaded (this is where the GLIBCXX problem shows).
                var probe = ones(2, 2).matmul(ones(2, 2)).sum().item<float>();
                Console.WriteLine($"torch: ok (probe {probe}), threads {get_num_threads()}, cuda available: {cuda.is_available()}");
            }
            NativeLibraryInfo.EnsureCompatible();
            Console.WriteLine($"native kernels: ok (ABI {NativeLibraryInfo.ExpectedAbiVersion}, CUDA kernels: {(NativeLibraryInfo.HasCuda ? "yes" : "no")})");
            return 0;
        });
        return command;
    }
}
