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
        var stressSeconds = new Option<int>("--keepalive-stress")
        {
            Description = "Afterwards, try for this many seconds to reproduce the TorchSharp Scalar/Tensor lifetime race " +
                          "that the build's keep-alive rewrite closes (exit code 1 if it shows)",
        };
        command.Options.Add(stressSeconds);
        command.SetAction(parse =>
        {
            Console.WriteLine($"dotnet: {RuntimeInformation.FrameworkDescription} ({RuntimeInformation.OSDescription})");
            Console.WriteLine($"TorchSharp: {typeof(torch).Assembly.GetName().Version}, keep-alive rewrite: " +
                              $"{(KeepAliveStress.TorchSharpIsPatched ? "yes" : "NO (not the build's TorchSharp.dll)")}");
            using (NewDisposeScope())
            {
                // A real op proves the native library loaded (this is where the GLIBCXX problem shows).
                var probe = ones(2, 2).matmul(ones(2, 2)).sum().item<float>();
                Console.WriteLine($"torch: ok (probe {probe}), threads {get_num_threads()}, cuda available: {cuda.is_available()}");
            }
            NativeLibraryInfo.EnsureCompatible();
            Console.WriteLine($"native kernels: ok (ABI {NativeLibraryInfo.ExpectedAbiVersion}, CUDA kernels: {(NativeLibraryInfo.HasCuda ? "yes" : "no")})");
            int seconds = parse.GetValue(stressSeconds);
            if (seconds <= 0) return 0;
            int workers = Math.Max(2, Environment.ProcessorCount);
            Console.WriteLine($"keep-alive stress: {seconds} s, {workers} worker threads and one collecting garbage...");
            var result = KeepAliveStress.Run(TimeSpan.FromSeconds(seconds), workers);
            Console.WriteLine($"keep-alive stress: {result.Operations} ops, {result.Collections} collections: " +
                              $"{result.WrongResults} wrong results, {result.Errors} libtorch errors" +
                              (result.FirstFailure is null ? "" : $" (first: {result.FirstFailure})"));
            return result.WrongResults + result.Errors == 0 ? 0 : 1;
        });
        return command;
    }
}
