using System.Diagnostics;
using System.Security.Cryptography;
using NUnit.Framework;

namespace Vim.Tests.Foundation;

/// <summary>
/// The GLIBCXX_3.4.32 fix (native/tools/torchsharp_fix.cpp) applied to a pristine copy of
/// libLibTorchSharp.so from the NuGet cache: it must produce the intended ELF state, be
/// idempotent, and the patched library in the output folder must load under eager binding.
/// </summary>
public class TorchSharpFixTests
{
    private static string FixTool => Path.Combine(AppContext.BaseDirectory, "vimdense-torchsharp-fix");

    private static string OutputNativeDir => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");

    private static string? PristineLibrary()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        return File.Exists(path) ? path : null;
    }

    private static (int Code, string Output) Run(string file, string arguments, IDictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static Dictionary<string, string> Status(string library)
    {
        var (code, output) = Run(FixTool, $"status \"{library}\"");
        Assert.That(code, Is.Zero, output);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
    }

    [Test]
    public void ForcedFixProducesTheIntendedElfStateAndIsIdempotent()
    {
        var pristine = PristineLibrary();
        if (pristine is null) Assert.Inconclusive("TorchSharp 0.107.0 is not in the NuGet cache");
        var dir = Directory.CreateTempSubdirectory("vimdense-fix-").FullName;
        try
        {
            var library = Path.Combine(dir, "libLibTorchSharp.so");
            File.Copy(pristine!, library);
            File.Copy(Path.Combine(OutputNativeDir, "libvimdense_glibcxx_compat.so"), Path.Combine(dir, "libvimdense_glibcxx_compat.so"));

            var before = Status(library);
            Assert.That(before["requirement_weak"], Is.EqualTo("no"), "the pristine library requires GLIBCXX_3.4.32 strictly");
            Assert.That(before["symbol_versioned"], Is.EqualTo("yes"));
            Assert.That(before["needs_libvimdense_glibcxx_compat.so"], Is.EqualTo("no"));

            var (code, output) = Run(FixTool, $"apply \"{library}\" --force");
            Assert.That(code, Is.Zero, output);
            var after = Status(library);
            Assert.That(after["requirement_weak"], Is.EqualTo("yes"));
            Assert.That(after["symbol_versioned"], Is.EqualTo("no"));
            Assert.That(after["needs_libvimdense_glibcxx_compat.so"], Is.EqualTo("yes"));

            var hash = SHA256.HashData(File.ReadAllBytes(library));
            (code, output) = Run(FixTool, $"apply \"{library}\" --force");
            Assert.That(code, Is.Zero, output);
            Assert.That(output, Does.Contain("already fixed"));
            Assert.That(SHA256.HashData(File.ReadAllBytes(library)), Is.EqualTo(hash), "a second run must not change a byte");

            // Independent check with binutils, where present.
            if (File.Exists("/usr/bin/readelf"))
            {
                var (_, versions) = Run("/usr/bin/readelf", $"-V \"{library}\"");
                Assert.That(versions, Does.Match(@"Name: GLIBCXX_3\.4\.32\s+Flags: WEAK"));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void OutputLibraryLoadsWithEagerBinding()
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "VimDense.dll");
        var (code, output) = Run("dotnet", $"\"{cli}\" env", new Dictionary<string, string> { ["LD_BIND_NOW"] = "1" });
        Assert.That(code, Is.Zero, output);
        Assert.That(output, Does.Contain("torch: ok (probe 8)"));
        Assert.That(output, Does.Contain("native kernels: ok"));
    }

    [Test]
    public void FixToolRejectsANonElfFileWithItsName()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "not a library");
            var (code, output) = Run(FixTool, $"status \"{file}\"");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(output, Does.Contain(file).And.Contain("not an ELF file"));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
