using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MathNet.Numerics.Statistics;
using TorchSharp;
using Vim.Core;
using Vim.Core.Ssm;
using static TorchSharp.torch;
using Vim.Core.IO;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim bench scan`: the selective-scan backends on Vim-Ti shapes (channels 384, N 16, batch 1 by
/// default): forward alone (no autograd graph), backward alone (torch.autograd.grad of every input,
/// timed from the call on the output of an untimed forward under autograd: the kernel, gradient
/// allocation and the autograd engine) and forward+backward; median and minimum of repeated runs after warm-up, in G state-updates/s
/// (batch·channels·L·N per second, at the median) and as speed-ups over the TorchSharp reference.
/// The minimum is the steadier figure on a shared machine.
/// </summary>
public static class BenchScanCommand
{
    public sealed record Measurement(string Backend, long Batch, long Channels, long Length, long State, string Pass,
        double MedianMs, double MinMs, double GUpdatesPerSecond, double? SpeedupVsReference, int Repeats);

    public sealed record Report(string Date, string Machine, int ProcessorCount, string NativeIsa, int NativeThreads,
        int Warmup, int Repeats, IReadOnlyList<Measurement> Results);

    public static Command Create()
    {
        var lengths = new Option<string>("--lengths") { Description = "Comma-separated sequence lengths", DefaultValueFactory = _ => "197,1025,4097" };
        var channels = new Option<long>("--channels") { Description = "Channels (d_inner); Vim-Ti: 384", DefaultValueFactory = _ => 384 };
        var state = new Option<long>("--state") { Description = "State size N", DefaultValueFactory = _ => 16 };
        var batch = new Option<long>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs before timing", DefaultValueFactory = _ => 2 };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs (the median is reported); fewer when --max-seconds runs out", DefaultValueFactory = _ => 7 };
        var backends = new Option<string>("--backends") { Description = "Comma-separated: reference, native-cpu, cuda (default: all that can run here)", DefaultValueFactory = _ => "" };
        var threads = new Option<int>("--threads") { Description = "Native CPU kernel threads (0 = all CPUs this process may use)", DefaultValueFactory = _ => 0 };
        var budget = new Option<double>("--max-seconds") { Description = "Time budget per backend, length and pass: stop repeating (after at least one timed run) once spent; the slow reference needs it", DefaultValueFactory = _ => 30.0 };
        var outDir = new Option<string>("--out") { Description = "Folder for scan.csv and scan.json", DefaultValueFactory = _ => "artifacts/bench/scan" };
        var cmd = new Command("scan", "Selective-scan backends (reference, native CPU, CUDA) on Vim-Ti shapes.");
        foreach (var o in new Option[] { lengths, channels, state, batch, warmup, repeats, backends, threads, budget, outDir })
            cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var ls = ParseLengths(parse.GetValue(lengths)!);
            long ch = BenchCommand.Positive(parse.GetValue(channels), "--channels");
            long n = BenchCommand.Positive(parse.GetValue(state), "--state");
            long bt = BenchCommand.Positive(parse.GetValue(batch), "--batch");
            int wu = BenchCommand.NonNegative(parse.GetValue(warmup), "--warmup");
            int rep = BenchCommand.Positive(parse.GetValue(repeats), "--repeats");
            var chosen = ParseBackends(parse.GetValue(backends)!);
            SelectiveScan.NativeThreads = parse.GetValue(threads);
            double seconds = parse.GetValue(budget);
            if (!(seconds > 0)) throw new VimException($"--max-seconds: must be positive, got {seconds}");
            OutputFolder.Check(parse.GetValue(outDir)!, "--out");
            Run(ls, ch, n, bt, wu, rep, seconds, chosen, parse.GetValue(outDir)!);
            return 0;
        });
        return cmd;
    }

    private static void Run(IReadOnlyList<long> lengths, long channels, long state, long batch, int warmup, int repeats,
        double budgetSeconds, IReadOnlyList<SelectiveScanBackend> backends, string outDir)
    {
        Console.WriteLine($"selective scan: batch {batch}, channels {channels}, N {state}; native CPU: {SelectiveScan.NativeCpuInstructionSet}, {SelectiveScan.NativeThreads} threads; median of {repeats} after {warmup} warm-up");
        Console.WriteLine($"{"backend",-11} {"L",6} {"pass",-8} {"median ms",10} {"min ms",9} {"G upd/s",9} {"at min",8} {"vs ref",8}");
        var results = new List<Measurement>();
        foreach (long length in lengths)
        {
            var medians = new Dictionary<(SelectiveScanBackend, string), double>();
            foreach (var backend in backends)
            {
                foreach (var pass in new[] { "fwd", "bwd", "fwd+bwd" })
                {
                    var times = Time(backend, batch, channels, length, state, pass, warmup, repeats, budgetSeconds);
                    double median = times.Median();
                    medians[(backend, pass)] = median;
                    double updates = (double)batch * channels * length * state;
                    double? speedup = medians.TryGetValue((SelectiveScanBackend.Reference, pass), out var refMs) ? refMs / median : null;
                    var m = new Measurement(Name(backend), batch, channels, length, state, pass, median, times.Min(),
                        updates / (median / 1000.0) / 1e9, speedup, times.Count);
                    results.Add(m);
                    Console.WriteLine($"{m.Backend,-11} {length,6} {pass,-8} {median,10:F3} {m.MinMs,9:F3} {m.GUpdatesPerSecond,9:F3} {updates / (m.MinMs / 1000.0) / 1e9,8:F3} {(speedup is null ? "-" : speedup.Value.ToString("F1", CultureInfo.InvariantCulture) + "x"),8}{(times.Count < repeats ? $"  ({times.Count} runs: time budget)" : "")}");
                }
            }
        }
        var report = new Report(DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture), Environment.MachineName,
            Environment.ProcessorCount, SelectiveScan.NativeCpuInstructionSet, SelectiveScan.NativeThreads, warmup, repeats, results);
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteText(Path.Combine(outDir, "scan.json"), JsonSerializer.Serialize(report, MetricJson.Indented));
        AtomicFile.WriteText(Path.Combine(outDir, "scan.csv"), ToCsv(results));
        Console.WriteLine($"wrote {Path.Combine(outDir, "scan.csv")} and scan.json");
    }

    /// <summary>Times of <paramref name="pass"/> ("fwd", "bwd" or "fwd+bwd") in milliseconds.</summary>
    private static List<double> Time(SelectiveScanBackend backend, long batch, long channels, long length, long state,
        string pass, int warmup, int repeats, double budgetSeconds)
    {
        var device = backend == SelectiveScanBackend.Cuda ? CUDA : CPU;
        using var outer = NewDisposeScope();
        var gen = new Generator(1234);
        Tensor R(params long[] s) => randn(s, generator: gen).to(device);
        var u = R(batch, channels, length);
        var delta = R(batch, channels, length) - 1.5;
        var A = (-(arange(1, state + 1, dtype: ScalarType.Float32).unsqueeze(0) * (rand(new[] { channels, state }, generator: gen) + 0.5))).to(device);
        var B = R(batch, state, length);
        var C = R(batch, state, length);
        var D = R(channels);
        var z = R(batch, channels, length);
        var bias = R(channels) * 0.5;
        var gradOut = R(batch, channels, length);
        var leaves = new[] { u, delta, A, B, C, D, z, bias };
        bool withBackward = pass != "fwd";
        if (withBackward)
            foreach (var t in leaves) t.requires_grad_(true);
        void Synchronize()
        {
            if (device.type == DeviceType.CUDA) cuda.synchronize();
        }
        double Once()
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            if (withBackward)
            {
                var y = SelectiveScan.Apply(backend, u, delta, A, B, C, D, z, bias, true);
                if (pass == "bwd")
                {
                    Synchronize();
                    sw.Restart();
                }
                // autograd.grad hands the gradients back without accumulating them into the leaves' .grad
                // (which copies each one, since our handles still hold it): inside a model the scan's
                // inputs are intermediate tensors, and no such copy happens.
                torch.autograd.grad(new[] { y }, leaves, new[] { gradOut });
                Synchronize();
                return sw.Elapsed.TotalMilliseconds;
            }
            using (no_grad())
                SelectiveScan.Apply(backend, u, delta, A, B, C, D, z, bias, true);
            Synchronize();
            return sw.Elapsed.TotalMilliseconds;
        }
        var spent = Stopwatch.StartNew();
        for (int i = 0; i < warmup && spent.Elapsed.TotalSeconds < budgetSeconds / 2; i++) Once();
        var times = new List<double>(repeats);
        for (int i = 0; i < repeats && (i == 0 || spent.Elapsed.TotalSeconds < budgetSeconds); i++)
            times.Add(Once());
        return times;
    }

    private static string ToCsv(IEnumerable<Measurement> results)
    {
        var sb = new StringBuilder("backend,batch,channels,length,state,pass,median_ms,min_ms,g_updates_per_s,speedup_vs_reference,repeats\n");
        foreach (var m in results)
            sb.Append(string.Create(CultureInfo.InvariantCulture,
                $"{m.Backend},{m.Batch},{m.Channels},{m.Length},{m.State},{m.Pass},{m.MedianMs:F4},{m.MinMs:F4},{m.GUpdatesPerSecond:F4},{(m.SpeedupVsReference is null ? "" : m.SpeedupVsReference.Value.ToString("F2", CultureInfo.InvariantCulture))},{m.Repeats}\n"));
        return sb.ToString();
    }

    private static string Name(SelectiveScanBackend b) => b switch
    {
        SelectiveScanBackend.Reference => "reference",
        SelectiveScanBackend.NativeCpu => "native-cpu",
        SelectiveScanBackend.Cuda => "cuda",
        _ => b.ToString(),
    };

    private static IReadOnlyList<SelectiveScanBackend> ParseBackends(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            var all = new List<SelectiveScanBackend> { SelectiveScanBackend.Reference, SelectiveScanBackend.NativeCpu };
            if (cuda.is_available() && SelectiveScan.CudaKernelsAvailable) all.Add(SelectiveScanBackend.Cuda);
            return all;
        }
        var list = new List<SelectiveScanBackend>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var b = part.ToLowerInvariant() switch
            {
                "reference" => SelectiveScanBackend.Reference,
                "native-cpu" or "native" or "cpu" => SelectiveScanBackend.NativeCpu,
                "cuda" => SelectiveScanBackend.Cuda,
                _ => throw new VimException($"--backends: unknown backend '{part}'; expected reference, native-cpu or cuda"),
            };
            if (b == SelectiveScanBackend.Cuda && !(cuda.is_available() && SelectiveScan.CudaKernelsAvailable))
                throw new VimException("--backends: cuda requested, but no CUDA device is visible to TorchSharp or libvimdense_native has no CUDA kernels");
            list.Add(b);
        }
        // The reference first, so the others can be compared with it.
        return list.OrderBy(b => b == SelectiveScanBackend.Reference ? 0 : 1).ToList();
    }

    private static IReadOnlyList<long> ParseLengths(string text)
    {
        var list = new List<long>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) || v < 1)
                throw new VimException($"--lengths: '{part}' is not a positive integer (expected e.g. 197,1025,4097)");
            list.Add(v);
        }
        if (list.Count == 0) throw new VimException("--lengths: at least one length is required");
        return list;
    }
}
