using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MathNet.Numerics.Statistics;
using Vim.Core;
using Vim.Core.Diagnostics;
using Vim.Core.Models;
using static TorchSharp.torch;
using Vim.Core.IO;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim bench backbone`: feature-extraction latency and peak memory of Vim vs DeiT over input sizes
/// (the paper's Figure 1 on this machine). Every (model, attention, size) runs in a fresh child process
/// so its resident-memory high-water mark is its own; DeiT runs with explicit softmax(QKᵀ)V attention
/// (as the paper measured it) and with scaled_dot_product_attention. With --backward each run is a training
/// step's forward + backward instead, optionally with activation checkpointing (--with-cp, model.backbone.with_cp).
/// </summary>
public static class BenchBackboneCommand
{
    private static readonly JsonSerializerOptions JsonOptions = MetricJson.Indented;

    /// <summary>
    /// One measured configuration: median latency; PeakMiB, the resident high-water mark above the idle
    /// process during one forward with large blocks returned to the system at free (so it counts the
    /// tensors alive at the peak, like a GPU's max_memory_allocated); AllocatorPeakMiB, the high-water mark
    /// over all timed forwards under the process's allocator policy (NativeHeapPolicy keeps freed heap
    /// memory). Rounds: how many child runs were combined (see <see cref="Combine"/>). Gflops: the same forward's
    /// FLOPs (of the whole batch; one multiply-add = one FLOP, <see cref="FlopCounter"/>), counted on an untimed forward.
    /// Pass: what was timed (<see cref="Workload.Label"/>).
    /// </summary>
    public sealed record Measurement(string Model, string Attention, int RequestedSize, int InputSize, long Tokens, int Batch,
        double MedianMs, double MinMs, double PeakMiB, double AllocatorPeakMiB, string Status, int Rounds = 1, double Gflops = double.NaN,
        string Pass = "forward");

    /// <summary>
    /// What one run times: the inference forward (eval mode, no autograd), or a training step's forward + backward (training
    /// mode, drop path on, the loss the sum of the final features), optionally with the blocks checkpointed.
    /// </summary>
    public sealed record Workload(bool Backward, bool WithCp)
    {
        public static Workload Forward { get; } = new(false, false);

        public string Label => !Backward ? "forward" : WithCp ? "forward+backward with_cp" : "forward+backward";
    }

    public static Command CreateBackbone()
    {
        var command = new Command("backbone", "Backbone forward latency and peak memory vs input size (Vim vs DeiT, Figure 1 style); with --backward, a training step's forward + backward.");
        var models = new Option<string>("--models") { Description = "Comma-separated registered models (a detection or segmentation entry is measured on the backbone it wraps).", DefaultValueFactory = _ => "vim_tiny,deit_tiny" };
        var sizes = new Option<string>("--sizes") { Description = "Comma-separated square input sizes (sizes that do not tile are cropped down to the nearest one that does).", DefaultValueFactory = _ => "224,512,738,1024,1248" };
        var batch = new Option<int>("--batch") { Description = "Images per forward.", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed passes (forwards, or steps with --backward) before timing.", DefaultValueFactory = _ => 1 };
        var repeats = new Option<int>("--repeats") { Description = "Timed passes (the median is reported).", DefaultValueFactory = _ => 3 };
        var output = new Option<string>("--out") { Description = "Output folder for CSV, JSON and charts.", DefaultValueFactory = _ => Path.Combine("artifacts", "bench", "backbone") };
        var timeout = new Option<int>("--timeout") { Description = "Seconds allowed per child run.", DefaultValueFactory = _ => 1800 };
        var rounds = new Option<int>("--rounds")
        {
            Description = "Runs of each size's models, alternating (Vim, DeiT explicit, DeiT SDPA, Vim, ...): latency is the median of the " +
                "runs' medians and each speed-up the median of the per-round ratios, steadier on a shared machine.",
            DefaultValueFactory = _ => 1,
        };
        // Internal: one measurement in this process (what the parent spawns).
        var child = new Option<string?>("--child") { Description = "Internal: MODEL:ATTENTION:SIZE measured in this process.", Hidden = true };
        // Diagnostic: time per forward stage (no children, no memory figures).
        var breakdown = new Option<bool>("--breakdown") { Description = "Print the time of each forward stage (in_proj, conv, scan, ...) instead of the comparison (measured in this process)." };
        var backward = new Option<bool>("--backward")
        {
            Description = "Time a training step's forward + backward instead of the inference forward (training mode, drop path on, " +
                "loss = sum of the final features; GFLOPs stay the forward's); the memory figures are then the step's peak.",
        };
        var withCp = new Option<bool>("--with-cp")
        {
            Description = "With --backward: build the backbones with activation checkpointing (model.backbone.with_cp), each block " +
                "recomputed in backward instead of keeping its activations.",
        };
        foreach (var option in new Option[] { models, sizes, batch, warmup, repeats, output, timeout, rounds, child, breakdown, backward, withCp }) command.Options.Add(option);

        command.SetAction(parseResult =>
        {
            try
            {
                int batchSize = BenchCommand.Positive(parseResult.GetValue(batch), "--batch");
                int warmups = Math.Max(0, parseResult.GetValue(warmup));
                int timed = BenchCommand.Positive(parseResult.GetValue(repeats), "--repeats");
                var workload = new Workload(parseResult.GetValue(backward), parseResult.GetValue(withCp));
                if (workload.WithCp && !workload.Backward)
                    throw new VimException("--with-cp recomputes the blocks in backward and changes nothing in a forward; add --backward");
                var childSpec = parseResult.GetValue(child);
                if (childSpec is not null)
                {
                    var result = MeasureHere(childSpec, batchSize, warmups, timed, workload);
                    Console.Out.WriteLine("RESULT " + JsonSerializer.Serialize(result, MetricJson.Compact));
                    return 0;
                }
                var modelNames = SplitList(parseResult.GetValue(models)!, "--models");
                var sizeList = SplitList(parseResult.GetValue(sizes)!, "--sizes").Select(s => ParseSize(s)).ToList();
                if (parseResult.GetValue(breakdown))
                {
                    if (workload.Backward)
                        throw new VimException("--breakdown times the stages of the inference forward; it takes no --backward");
                    foreach (var model in modelNames)
                        foreach (var size in sizeList)
                            PrintBreakdown(model, size, batchSize, warmups, timed);
                    return 0;
                }
                return RunAll(modelNames, sizeList, batchSize, warmups, timed, parseResult.GetValue(output)!, BenchCommand.Positive(parseResult.GetValue(timeout), "--timeout"),
                    BenchCommand.Positive(parseResult.GetValue(rounds), "--rounds"), workload);
            }
            catch (VimException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    /// <summary>
    /// Runs every model × size in a fresh child process, <paramref name="rounds"/> times per size with the models
    /// alternating (a size's runs are adjacent in time, so a slow spell of a shared machine hits both sides of a
    /// ratio); writes CSV, JSON and charts into <paramref name="outDir"/>.
    /// </summary>
    internal static int RunAll(IReadOnlyList<string> models, IReadOnlyList<int> sizes, int batch, int warmup, int repeats, string outDir,
        int timeoutSeconds, int rounds = 1, Workload? workload = null)
    {
        workload ??= Workload.Forward;
        var shapes = new Dictionary<string, ModelShape>();
        foreach (var model in models)
        {
            using var module = ModelRegistry.Create(model);
            shapes[model] = ModelShape.Of(module, model);
        }
        var runs = new List<(int Round, Measurement Measurement)>();
        if (workload.Backward) Console.Out.WriteLine($"timing {workload.Label} (training mode)");
        foreach (var size in sizes)
            for (int round = 1; round <= rounds; round++)
                foreach (var model in models)
                    foreach (var attention in shapes[model].AttentionModes)
                    {
                        var measurement = RunChild(model, shapes[model], attention, size, batch, warmup, repeats, timeoutSeconds, workload);
                        runs.Add((round, measurement));
                        Console.Out.WriteLine($"{Label(measurement),-22} size {size,5} ({measurement.Tokens,5} tokens)  " +
                            (rounds > 1 ? $"round {round}/{rounds}  " : "") +
                            (measurement.Status == "ok" ? $"median {measurement.MedianMs,10:F1} ms  {measurement.Gflops,8:F2} GFLOPs  peak {measurement.PeakMiB,9:F1} MiB (default allocator {measurement.AllocatorPeakMiB,9:F1} MiB)" : measurement.Status));
                    }
        var results = runs.GroupBy(r => (r.Measurement.Model, r.Measurement.Attention, r.Measurement.RequestedSize))
            .Select(g => Combine(g.Select(r => r.Measurement).ToList()))
            .OrderBy(m => models.ToList().IndexOf(m.Model)).ThenBy(m => m.Attention, StringComparer.Ordinal).ThenBy(m => m.RequestedSize)
            .ToList();

        Directory.CreateDirectory(outDir);
        AtomicFile.WriteText(Path.Combine(outDir, "backbone.csv"), Csv(results));
        AtomicFile.WriteText(Path.Combine(outDir, "backbone.json"), JsonSerializer.Serialize(results, JsonOptions));
        Chart(results, Path.Combine(outDir, "latency.png"), $"{(workload.Backward ? "Forward + backward" : "Forward")} latency (median, ms)", m => m.MedianMs);
        Chart(results, Path.Combine(outDir, "memory.png"), "Peak memory above idle (MiB)", m => m.PeakMiB);
        PrintRatios(runs, results, shapes);
        Console.Out.WriteLine($"wrote {outDir}/backbone.csv, backbone.json, latency.png, memory.png");
        return results.All(r => r.Status == "ok") ? 0 : 1;
    }

    /// <summary>
    /// One configuration's runs as one measurement: the median of the runs' medians and peaks, the minimum of their
    /// minima; the first failure's status if any run failed.
    /// </summary>
    public static Measurement Combine(IReadOnlyList<Measurement> runs)
    {
        if (runs.Count == 0) throw new ArgumentException("no runs to combine", nameof(runs));
        var failed = runs.FirstOrDefault(r => r.Status != "ok");
        if (failed is not null) return failed with { Rounds = runs.Count };
        return runs[0] with
        {
            MedianMs = runs.Select(r => r.MedianMs).Median(),
            MinMs = runs.Min(r => r.MinMs),
            PeakMiB = runs.Select(r => r.PeakMiB).Median(),
            AllocatorPeakMiB = runs.Select(r => r.AllocatorPeakMiB).Median(),
            Rounds = runs.Count,
        };
    }

    /// <summary>
    /// The speed-up of <paramref name="model"/> over <paramref name="baseline"/> (baseline time / model time) as the
    /// median of the ratios of runs from the same round; NaN when no round has both runs ok.
    /// </summary>
    public static double MedianSpeedup(IReadOnlyList<(int Round, Measurement Measurement)> runs, Measurement model, Measurement baseline)
    {
        bool Same(Measurement a, Measurement b) => a.Model == b.Model && a.Attention == b.Attention && a.RequestedSize == b.RequestedSize;
        Dictionary<int, double> ByRound(Measurement which) => runs.Where(r => Same(r.Measurement, which) && r.Measurement.Status == "ok")
            .ToDictionary(r => r.Round, r => r.Measurement.MedianMs);
        return PairedRounds.MedianRatio(ByRound(baseline), ByRound(model));
    }

    /// <summary>What the parent needs to know about a model to plan runs and label them.</summary>
    private sealed record ModelShape(bool IsTransformer, int Patch, int Stride, bool HasClassToken)
    {
        /// <summary>Largest input ≤ size that tiles with the patch and stride (738 → 736: the paper's 46×46 tokens).</summary>
        public int TilingSize(int size) =>
            size >= Patch ? (size - Patch) / Stride * Stride + Patch : throw new VimException($"--sizes: {size} is smaller than the patch size {Patch}.");

        public long Tokens(int inputSize)
        {
            long grid = (inputSize - Patch) / Stride + 1;
            return grid * grid + (HasClassToken ? 1 : 0);
        }

        public IEnumerable<string> AttentionModes => IsTransformer ? new[] { "explicit", "sdpa" } : new[] { "-" };

        public static ModelShape Of(nn.Module module, string name) => TokenBackbone(module, name) switch
        {
            VisionMamba vim => new(false, vim.Config.PatchSize, vim.Config.Stride, vim.Config.ClassToken != ClassTokenPosition.None),
            VisionTransformer vit => new(true, vit.Config.PatchSize, vit.Config.PatchSize, vit.Config.ClassToken),
            _ => throw new VimException($"bench backbone: '{name}' holds neither a Vim nor a DeiT backbone."),
        };
    }

    /// <summary>The backbone a registered model is or wraps (a detection or segmentation entry's pyramid holds one): what is measured.</summary>
    private static nn.Module TokenBackbone(nn.Module module, string name) =>
        module.modules().FirstOrDefault(m => m is ITokenBackbone)
        ?? throw new VimException($"bench backbone: '{name}' holds no token backbone (use vim*_ or deit*_ names).");

    private static Measurement RunChild(string model, ModelShape shape, string attention, int size, int batch, int warmup, int repeats, int timeoutSeconds,
        Workload workload)
    {
        var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location
            ?? throw new VimException("bench backbone: cannot locate the CLI assembly to start child runs.");
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (entry.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) start.ArgumentList.Add(entry);
        foreach (var arg in new[] { "bench", "backbone", "--child", $"{model}:{attention}:{size}", "--batch", batch.ToString(CultureInfo.InvariantCulture),
                     "--warmup", warmup.ToString(CultureInfo.InvariantCulture), "--repeats", repeats.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        if (workload.Backward) start.ArgumentList.Add("--backward");
        if (workload.WithCp) start.ArgumentList.Add("--with-cp");

        int inputSize = shape.TilingSize(size);
        long tokens = shape.Tokens(inputSize);
        using var process = Process.Start(start) ?? throw new VimException($"bench backbone: could not start a child for {model} at {size}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            process.Kill(entireProcessTree: true);
            return new Measurement(model, attention, size, inputSize, tokens, batch, double.NaN, double.NaN, double.NaN, double.NaN, $"timeout after {timeoutSeconds} s",
                Pass: workload.Label);
        }
        var line = stdout.Result.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (process.ExitCode != 0 || line is null)
        {
            var reason = stderr.Result.Split('\n').FirstOrDefault(l => l.Trim().Length > 0)?.Trim() ?? $"exit code {process.ExitCode}";
            return new Measurement(model, attention, size, inputSize, tokens, batch, double.NaN, double.NaN, double.NaN, double.NaN, $"failed: {reason}",
                Pass: workload.Label);
        }
        return JsonSerializer.Deserialize<Measurement>(line["RESULT ".Length..], MetricJson.Compact)
               ?? throw new VimException($"bench backbone: unreadable child result for {model} at {size}.");
    }

    /// <summary>
    /// Builds the model, runs warm-up and timed passes (feature extractions, or with <see cref="Workload.Backward"/> training
    /// forward + backward passes); memory = VmHWM − idle VmRSS.
    /// </summary>
    private static Measurement MeasureHere(string spec, int batch, int warmup, int repeats, Workload workload)
    {
        var parts = spec.Split(':');
        if (parts.Length != 3) throw new VimException($"--child: expected MODEL:ATTENTION:SIZE, got '{spec}'.");
        string model = parts[0], attention = parts[1];
        int requested = ParseSize(parts[2]);

        using (var warm = zeros(8)) warm.add_(1);   // load libtorch before taking the idle baseline
        long idleKiB = ProcessMemory.ResidentBytes() / 1024;
        ResetPeak();

        using var module = ModelRegistry.Create(model, overrides: new BackboneOverrides(WithCp: workload.WithCp));
        var net = TokenBackbone(module, model);
        var backbone = (ITokenBackbone)net;
        if (net is VisionTransformer vit)
            vit.Attention = attention == "explicit" ? AttentionKind.Explicit : AttentionKind.ScaledDotProduct;
        if (workload.Backward) net.train();
        else net.eval();
        int inputSize = ModelShape.Of(module, model).TilingSize(requested);
        using var noGrad = workload.Backward ? null : no_grad();
        using var images = randn(batch, 3, inputSize, inputSize, generator: new Generator(0));
        long tokens = 0;
        double gflops = double.NaN;
        // One pass; the FLOPs of its forward (hooks cost nothing measurable, but are kept out of the timed passes).
        void Pass(bool countFlops)
        {
            using var scope = NewDisposeScope();
            Tensor features;
            using (var counter = countFlops ? FlopCounter.Start(module) : null)
            {
                features = backbone.ForwardTokens(images);
                if (counter is not null) gflops = counter.Total / 1e9;
            }
            tokens = features.shape[1];
            if (!workload.Backward) return;
            // Each step allocates the gradients afresh, as after the trainer's zero_grad (which sets them to None).
            foreach (var p in net.parameters()) p.grad = null;
            features.sum().backward();
        }
        var timings = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            // The first warm-up pass, untimed, is also counted.
            var watch = Stopwatch.StartNew();
            Pass(countFlops: i == 0 && warmup > 0);
            watch.Stop();
            if (i >= warmup) timings.Add(watch.Elapsed.TotalMilliseconds);
        }
        long allocatorPeakKiB = ProcessMemory.PeakResidentBytes() / 1024;

        // Live-memory peak: from here on every block of 1 MiB or more is mmapped and unmapped at free,
        // freed heap memory is handed back, and the high-water mark restarts from the current resident
        // size; one more pass then raises it by what is really alive at its peak. Same treatment for
        // every model (it runs after the timed passes, which run under NativeHeapPolicy; its trim
        // threshold goes back to glibc's default here, since the policy keeps freed memory for speed).
        if (Mallopt(MallocMmapThreshold, 1 << 20) == 0 || Mallopt(MallocTrimThreshold, 128 << 10) == 0)
            throw new VimException("bench backbone: mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD) failed.");
        MallocTrim(0);
        ResetPeak();
        Pass(countFlops: false);
        long peakKiB = ProcessMemory.PeakResidentBytes() / 1024;
        if (double.IsNaN(gflops)) Pass(countFlops: true);

        return new Measurement(model, attention, requested, inputSize, tokens, batch, timings.Median(), timings.Min(),
            (peakKiB - idleKiB) / 1024.0, (allocatorPeakKiB - idleKiB) / 1024.0, "ok", Gflops: gflops, Pass: workload.Label);
    }

    /// <summary>Times each profiled stage of the forward (see <see cref="StageProfiler"/>) over the timed runs and prints ms per forward.</summary>
    private static void PrintBreakdown(string model, int requested, int batch, int warmup, int repeats)
    {
        using var module = ModelRegistry.Create(model);
        var net = TokenBackbone(module, model);
        var backbone = (ITokenBackbone)net;
        net.eval();
        int inputSize = ModelShape.Of(module, model).TilingSize(requested);
        using var noGrad = no_grad();
        using var images = randn(batch, 3, inputSize, inputSize, generator: new Generator(0));
        for (int i = 0; i < warmup; i++)
        {
            using var scope = NewDisposeScope();
            backbone.ForwardTokens(images);
        }
        // Each forward profiled on its own, so every stage also gets its median share of a forward.
        var forwards = new List<(double TotalMs, IReadOnlyList<StageProfiler.StageTotal> Stages)>();
        long cpuStart = ResourceUsage.ProcessCpuMicroseconds();
        for (int i = 0; i < repeats; i++)
        {
            StageProfiler.Start();
            var watch = Stopwatch.StartNew();
            // The freeing of the forward's tensors counts too, as it does in the process CPU time.
            using (NewDisposeScope())
                backbone.ForwardTokens(images);
            watch.Stop();
            forwards.Add((watch.Elapsed.TotalMilliseconds, StageProfiler.Stop()));
        }
        double cpuTotal = (ResourceUsage.ProcessCpuMicroseconds() - cpuStart) / 1000.0 / repeats;
        double total = forwards.Sum(f => f.TotalMs) / repeats;
        var stages = forwards.SelectMany(f => f.Stages).GroupBy(s => s.Stage)
            .Select(g => new StageProfiler.StageTotal(g.Key, g.Sum(s => s.Milliseconds), g.Sum(s => s.CpuMilliseconds), g.Sum(s => s.Calls)))
            .ToList();
        var medianShares = MedianShares(forwards);
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{model} at {inputSize}² (batch {batch}): {total:F1} ms per forward ({cpuTotal:F1} ms CPU, {get_num_threads()} torch threads), mean of {repeats}"));
        Console.Out.WriteLine($"  {"stage",-14} {"ms/forward",11} {"share",7} {"CPU ms",9} {"CPU share",10} {"calls/forward",14} {"median share",13}");
        var rows = stages.Append(new StageProfiler.StageTotal(OtherStage, total * repeats - stages.Sum(s => s.Milliseconds),
            cpuTotal * repeats - stages.Sum(s => s.CpuMilliseconds), repeats));
        foreach (var s in rows)
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {s.Stage,-14} {s.Milliseconds / repeats,11:F1} {100 * s.Milliseconds / repeats / total,6:F1}% {s.CpuMilliseconds / repeats,9:F1} {100 * s.CpuMilliseconds / repeats / cpuTotal,9:F1}% {s.Calls / (double)repeats,14:F0} {100 * medianShares[s.Stage],12:F1}%"));
        Console.Out.WriteLine("  share: of the mean forward; median share: the median over forwards of the stage's share of that forward (steadier on a shared machine, where a slow spell stretches some forwards and some stages).");
    }

    private const string OtherStage = "other";

    /// <summary>
    /// Each stage's share of a forward's wall time, the median over the forwards (a stage absent from a forward
    /// counts 0 there), and under "other" the median share of what no stage covered.
    /// </summary>
    public static IReadOnlyDictionary<string, double> MedianShares(
        IReadOnlyList<(double TotalMs, IReadOnlyList<StageProfiler.StageTotal> Stages)> forwards)
    {
        var names = forwards.SelectMany(f => f.Stages).Select(s => s.Stage).Distinct().ToList();
        var shares = names.ToDictionary(name => name,
            name => forwards.Select(f => f.Stages.Where(s => s.Stage == name).Sum(s => s.Milliseconds) / f.TotalMs).Median());
        shares[OtherStage] = forwards.Select(f => (f.TotalMs - f.Stages.Sum(s => s.Milliseconds)) / f.TotalMs).Median();
        return shares;
    }

    private const int MallocTrimThreshold = -1;   // M_TRIM_THRESHOLD in glibc's malloc.h
    private const int MallocMmapThreshold = -3;   // M_MMAP_THRESHOLD

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>Writing 5 to clear_refs resets the peak-RSS counter (Linux ≥ 4.0), so the idle process's own start-up peak is not counted.</summary>
    private static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string Label(Measurement m) => m.Attention == "-" ? m.Model : $"{m.Model}/{m.Attention}";

    private static string Csv(IEnumerable<Measurement> results)
    {
        var text = new StringBuilder("model,attention,requested_size,input_size,tokens,batch,median_ms,min_ms,peak_mib,allocator_peak_mib,rounds,gflops,status,pass\n");
        foreach (var m in results)
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"{m.Model},{m.Attention},{m.RequestedSize},{m.InputSize},{m.Tokens},{m.Batch},{m.MedianMs:F3},{m.MinMs:F3},{m.PeakMiB:F1},{m.AllocatorPeakMiB:F1},{m.Rounds},{m.Gflops:F4},\"{m.Status.Replace("\"", "'")}\",{m.Pass}\n"));
        return text.ToString();
    }

    private static void PrintRatios(IReadOnlyList<(int Round, Measurement Measurement)> runs, IReadOnlyList<Measurement> results,
        IReadOnlyDictionary<string, ModelShape> shapes)
    {
        var vims = results.Where(r => !shapes[r.Model].IsTransformer && r.Status == "ok").ToList();
        var deits = results.Where(r => shapes[r.Model].IsTransformer && r.Status == "ok").ToList();
        foreach (var vim in vims)
            foreach (var deit in deits.Where(d => d.RequestedSize == vim.RequestedSize))
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"size {vim.RequestedSize,5}: {vim.Model} vs {Label(deit)}: speed-up {MedianSpeedup(runs, vim, deit):F2}× (DeiT time / Vim time{(vim.Rounds > 1 ? $", median of {vim.Rounds} rounds" : "")}), memory saving {100 * (1 - vim.PeakMiB / deit.PeakMiB):F1}% (1 − Vim peak / DeiT peak; default allocator {100 * (1 - vim.AllocatorPeakMiB / deit.AllocatorPeakMiB):F1}%)"));
    }

    private static void Chart(IReadOnlyList<Measurement> results, string path, string yLabel, Func<Measurement, double> value)
    {
        var plot = new ScottPlot.Plot();
        foreach (var series in results.Where(r => r.Status == "ok" && value(r) > 0).GroupBy(Label))
        {
            var points = series.OrderBy(r => r.RequestedSize).ToList();
            var scatter = plot.Add.Scatter(points.Select(p => (double)p.RequestedSize).ToArray(), points.Select(p => Math.Log10(value(p))).ToArray());
            scatter.LegendText = series.Key;
        }
        // Log scale: values are plotted as log10 and the ticks relabelled.
        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            LabelFormatter = y => Math.Pow(10, y).ToString("#,0.###", CultureInfo.InvariantCulture),
            IntegerTicksOnly = true,
        };
        plot.Axes.Left.TickGenerator = ticks;
        plot.XLabel("Input size (pixels, square)");
        plot.YLabel(yLabel + ", log scale");
        plot.ShowLegend();
        var temp = path + ".tmp.png";
        plot.SavePng(temp, 900, 560);
        File.Move(temp, path, overwrite: true);
    }

    private static List<string> SplitList(string value, string option)
    {
        var items = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (items.Count == 0) throw new VimException($"{option}: expected a comma-separated list, got '{value}'.");
        return items;
    }

    private static int ParseSize(string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var size) && size > 0
            ? size
            : throw new VimException($"--sizes: '{text}' is not a positive integer.");
}
