using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using MathNet.Numerics.Statistics;
using Vim.Core;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Core.Models;
using static TorchSharp.torch;
using Vim.Core.IO;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim bench backbone`: feature-extraction latency and peak memory of Vim vs DeiT over input sizes
/// (the paper's Figure 1 on this machine). Every (model, attention, size) runs in a fresh child process
/// so its resident-memory high-water mark is its own; DeiT runs with explicit softmax(QKᵀ)V attention
/// (as the paper measured it) and with scaled_dot_product_attention. `--mode train` times a training step of the same
/// models instead (forward with autograd, backward), see <see cref="BenchMode.Train"/>.
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
    /// In train mode the latency and peaks are a training step's (forward + backward), ForwardMs and BackwardMs the medians
    /// of its two parts (so they need not add up to MedianMs exactly) and Gflops still the forward's alone; in infer mode
    /// both are null and left out of the JSON, which therefore reads as it always has.
    /// </summary>
    public sealed record Measurement(string Model, string Attention, int RequestedSize, int InputSize, long Tokens, int Batch,
        double MedianMs, double MinMs, double PeakMiB, double AllocatorPeakMiB, string Status, int Rounds = 1, double Gflops = double.NaN,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? ForwardMs = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? BackwardMs = null);

    /// <summary>
    /// What one timed repetition runs and how the results are named. Infer: the feature extraction (final tokens) in eval
    /// mode without autograd, written as backbone.csv/.json, latency.png and memory.png. Train: one training step of the
    /// backbone's dense feature extraction (<see cref="TrainingStep"/>), written with a "_train" suffix so that the two
    /// modes can share an output folder, the charts titled and the ratios worded for a training step.
    /// </summary>
    public sealed record BenchMode(string Name, string FileSuffix, string? ChartTitle, string LatencyAxis, string RatioSubject, bool WithCp = false,
        bool RecomputeInProj = false)
    {
        public static BenchMode Infer { get; } = new("infer", "", null, "Forward latency (median, ms)", "");

        public static BenchMode Train { get; } = new("train", "_train", "Training step (forward + backward)",
            "Forward + backward (median, ms)", "training step ");

        public bool IsTraining => Name == Train.Name;
        public string CsvFile => $"backbone{FileSuffix}.csv";
        public string JsonFile => $"backbone{FileSuffix}.json";
        public string LatencyChart => $"latency{FileSuffix}.png";
        public string MemoryChart => $"memory{FileSuffix}.png";

        /// <summary>Train with the blocks checkpointed (model.backbone.with_cp): results suffixed "_train_cp".</summary>
        public static BenchMode TrainWithCheckpointing { get; } = Train with
        {
            FileSuffix = "_train_cp", ChartTitle = "Training step (forward + backward), blocks checkpointed", RatioSubject = "training step (with_cp) ", WithCp = true,
        };

        public static BenchMode Parse(string? text, bool withCp = false, bool recomputeInProj = false)
        {
            var mode = (text, withCp) switch
            {
                ("infer", false) => Infer,
                ("infer", true) => throw new VimException("--with-cp recomputes the blocks in backward and changes nothing in a forward; add --mode train."),
                ("train", false) => Train,
                ("train", true) => TrainWithCheckpointing,
                _ => throw new VimException($"--mode: expected infer (feature extraction) or train (forward + backward), got '{text}'."),
            };
            if (!recomputeInProj) return mode;
            if (!mode.IsTraining)
                throw new VimException("--recompute-in-proj recomputes in_proj's output in backward and changes nothing in a forward; add --mode train.");
            // Results "_train_rip" / "_train_cp_rip", beside the plain ones.
            return mode with
            {
                FileSuffix = mode.FileSuffix + "_rip", ChartTitle = mode.ChartTitle + ", Vim's in_proj recomputed",
                RatioSubject = mode.RatioSubject.TrimEnd() + " (recompute_in_proj) ", RecomputeInProj = true,
            };
        }
    }

    /// <summary>One timed repetition: the forward's wall time and, in a training step, the backward's (0 otherwise).</summary>
    public readonly record struct RepetitionTime(double ForwardMs, double BackwardMs)
    {
        public double TotalMs => ForwardMs + BackwardMs;
    }

    public static Command CreateBackbone()
    {
        var command = new Command("backbone", "Backbone feature-extraction latency and peak memory vs input size (Vim vs DeiT, Figure 1 style); " +
            "--mode train times a training step (forward + backward) instead.");
        var models = new Option<string>("--models") { Description = "Comma-separated registered models (a detection or segmentation entry is measured on the backbone it wraps).", DefaultValueFactory = _ => "vim_tiny,deit_tiny" };
        var sizes = new Option<string>("--sizes") { Description = "Comma-separated square input sizes (sizes that do not tile are cropped down to the nearest one that does).", DefaultValueFactory = _ => "224,512,738,1024,1248" };
        var batch = new Option<int>("--batch") { Description = "Images per forward.", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed repetitions (forwards; training steps with --mode train) before timing.", DefaultValueFactory = _ => 1 };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions (the median is reported).", DefaultValueFactory = _ => 3 };
        var output = new Option<string>("--out") { Description = "Output folder for CSV, JSON and charts.", DefaultValueFactory = _ => Path.Combine("artifacts", "bench", "backbone") };
        var timeout = new Option<int>("--timeout") { Description = "Seconds allowed per child run.", DefaultValueFactory = _ => 1800 };
        var rounds = new Option<int>("--rounds")
        {
            Description = "Runs of each size's models, alternating (Vim, DeiT explicit, DeiT SDPA, Vim, ...): latency is the median of the " +
                "runs' medians and each speed-up the median of the per-round ratios, steadier on a shared machine.",
            DefaultValueFactory = _ => 1,
        };
        var mode = new Option<string>("--mode")
        {
            Description = "infer: feature extraction in eval mode without autograd (backbone.csv, backbone.json, latency.png, memory.png). " +
                "train: a training step, the dense feature maps' forward in training mode with autograd (drop path 0), the loss " +
                "sum of each map's mean and backward, gradients dropped between steps; latency and peak memory cover forward + backward " +
                "(backbone_train.csv, backbone_train.json, latency_train.png, memory_train.png).",
            DefaultValueFactory = _ => BenchMode.Infer.Name,
        };
        // Internal: one measurement in this process (what the parent spawns).
        var child = new Option<string?>("--child") { Description = "Internal: MODEL:ATTENTION:SIZE measured in this process.", Hidden = true };
        // Diagnostic: time per forward stage (no children, no memory figures).
        var breakdown = new Option<bool>("--breakdown") { Description = "Print the time of each forward stage (in_proj, conv, scan, ...) instead of the comparison (measured in this process)." };
        var withCp = new Option<bool>("--with-cp")
        {
            Description = "With --mode train: build the backbones with activation checkpointing (model.backbone.with_cp), each block recomputed " +
                "in backward instead of keeping its activations (backbone_train_cp.csv/.json, latency_train_cp.png, memory_train_cp.png).",
        };
        var recomputeInProj = new Option<bool>("--recompute-in-proj")
        {
            Description = "With --mode train: Vim's mixers recompute in_proj's output in backward instead of keeping it (model.backbone.recompute_in_proj; " +
                "DeiT runs as without it), results suffixed _rip (backbone_train_rip.csv, ...; with --with-cp _train_cp_rip).",
        };
        foreach (var option in new Option[] { models, sizes, batch, warmup, repeats, output, timeout, rounds, mode, withCp, recomputeInProj, child, breakdown })
            command.Options.Add(option);

        command.SetAction(parseResult =>
        {
            try
            {
                int batchSize = BenchCommand.Positive(parseResult.GetValue(batch), "--batch");
                int warmups = BenchCommand.NonNegative(parseResult.GetValue(warmup), "--warmup");
                int timed = BenchCommand.Positive(parseResult.GetValue(repeats), "--repeats");
                var benchMode = BenchMode.Parse(parseResult.GetValue(mode), parseResult.GetValue(withCp), parseResult.GetValue(recomputeInProj));
                if (benchMode.IsTraining && parseResult.GetValue(breakdown))
                    throw new VimException("--breakdown times the stages of the inference forward only; leave out --mode train.");
                var childSpec = parseResult.GetValue(child);
                if (childSpec is not null)
                {
                    var result = MeasureHere(childSpec, benchMode, batchSize, warmups, timed);
                    Console.Out.WriteLine("RESULT " + JsonSerializer.Serialize(result, MetricJson.Compact));
                    return 0;
                }
                var modelNames = SplitList(parseResult.GetValue(models)!, "--models");
                OutputFolder.Check(parseResult.GetValue(output)!, "--out");
                var sizeList = SplitList(parseResult.GetValue(sizes)!, "--sizes").Select(s => ParseSize(s)).ToList();
                if (parseResult.GetValue(breakdown))
                {
                    foreach (var model in modelNames)
                        foreach (var size in sizeList)
                            PrintBreakdown(model, size, batchSize, warmups, timed);
                    return 0;
                }
                return RunAll(modelNames, sizeList, batchSize, warmups, timed, parseResult.GetValue(output)!, BenchCommand.Positive(parseResult.GetValue(timeout), "--timeout"),
                    BenchCommand.Positive(parseResult.GetValue(rounds), "--rounds"), benchMode);
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
        int timeoutSeconds, int rounds = 1, BenchMode? mode = null)
    {
        mode ??= BenchMode.Infer;
        var shapes = new Dictionary<string, ModelShape>();
        foreach (var model in models)
        {
            using var module = ModelRegistry.Create(model);
            shapes[model] = ModelShape.Of(module, model);
        }
        var runs = new List<(int Round, Measurement Measurement)>();
        foreach (var size in sizes)
            for (int round = 1; round <= rounds; round++)
                foreach (var model in models)
                    foreach (var attention in shapes[model].AttentionModes)
                    {
                        var measurement = RunChild(model, shapes[model], attention, size, mode, batch, warmup, repeats, timeoutSeconds);
                        runs.Add((round, measurement));
                        Console.Out.WriteLine($"{Label(measurement),-22} size {size,5} ({measurement.Tokens,5} tokens)  " +
                            (rounds > 1 ? $"round {round}/{rounds}  " : "") +
                            (measurement.Status == "ok" ? $"median {measurement.MedianMs,10:F1} ms  {StepSplit(measurement)}{measurement.Gflops,8:F2} {(mode.IsTraining ? "forward " : "")}GFLOPs  peak {measurement.PeakMiB,9:F1} MiB (default allocator {measurement.AllocatorPeakMiB,9:F1} MiB)" : measurement.Status));
                    }
        var results = runs.GroupBy(r => (r.Measurement.Model, r.Measurement.Attention, r.Measurement.RequestedSize))
            .Select(g => Combine(g.Select(r => r.Measurement).ToList()))
            .OrderBy(m => models.ToList().IndexOf(m.Model)).ThenBy(m => m.Attention, StringComparer.Ordinal).ThenBy(m => m.RequestedSize)
            .ToList();

        Directory.CreateDirectory(outDir);
        AtomicFile.WriteText(Path.Combine(outDir, mode.CsvFile), Csv(results, mode));
        AtomicFile.WriteText(Path.Combine(outDir, mode.JsonFile), JsonSerializer.Serialize(results, JsonOptions));
        Chart(results, Path.Combine(outDir, mode.LatencyChart), mode.LatencyAxis, m => m.MedianMs, mode.ChartTitle);
        Chart(results, Path.Combine(outDir, mode.MemoryChart), MemoryAxis, m => m.PeakMiB, mode.ChartTitle);
        PrintRatios(runs, results, shapes, mode);
        Console.Out.WriteLine($"wrote {outDir}/{mode.CsvFile}, {mode.JsonFile}, {mode.LatencyChart}, {mode.MemoryChart}");
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
            ForwardMs = MedianOfAll(runs, r => r.ForwardMs),
            BackwardMs = MedianOfAll(runs, r => r.BackwardMs),
        };
    }

    /// <summary>The median of a field every run has; null where any run lacks it (infer-mode runs have no backward).</summary>
    private static double? MedianOfAll(IReadOnlyList<Measurement> runs, Func<Measurement, double?> field) =>
        runs.All(r => field(r) is not null) ? runs.Select(r => field(r)!.Value).Median() : null;

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
        (module is ITokenBackbone ? module : module.modules().FirstOrDefault(m => m is ITokenBackbone))
        ?? throw new VimException($"bench backbone: '{name}' holds no token backbone (use vim*_ or deit*_ names).");

    private static Measurement RunChild(string model, ModelShape shape, string attention, int size, BenchMode mode, int batch, int warmup, int repeats,
        int timeoutSeconds)
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
                     "--warmup", warmup.ToString(CultureInfo.InvariantCulture), "--repeats", repeats.ToString(CultureInfo.InvariantCulture),
                     "--mode", mode.Name })
            start.ArgumentList.Add(arg);
        if (mode.WithCp) start.ArgumentList.Add("--with-cp");
        if (mode.RecomputeInProj) start.ArgumentList.Add("--recompute-in-proj");

        int inputSize = shape.TilingSize(size);
        long tokens = shape.Tokens(inputSize);
        using var process = Process.Start(start) ?? throw new VimException($"bench backbone: could not start a child for {model} at {size}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            process.Kill(entireProcessTree: true);
            return new Measurement(model, attention, size, inputSize, tokens, batch, double.NaN, double.NaN, double.NaN, double.NaN, $"timeout after {timeoutSeconds} s");
        }
        var line = stdout.Result.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (process.ExitCode != 0 || line is null)
        {
            var reason = stderr.Result.Split('\n').FirstOrDefault(l => l.Trim().Length > 0)?.Trim() ?? $"exit code {process.ExitCode}";
            return new Measurement(model, attention, size, inputSize, tokens, batch, double.NaN, double.NaN, double.NaN, double.NaN, $"failed: {reason}");
        }
        return JsonSerializer.Deserialize<Measurement>(line["RESULT ".Length..], MetricJson.Compact)
               ?? throw new VimException($"bench backbone: unreadable child result for {model} at {size}.");
    }

    /// <summary>
    /// Builds the model, runs warm-up and timed repetitions of <paramref name="mode"/> (feature extractions, or training
    /// steps); memory = VmHWM − idle VmRSS.
    /// </summary>
    private static Measurement MeasureHere(string spec, BenchMode mode, int batch, int warmup, int repeats)
    {
        var parts = spec.Split(':');
        if (parts.Length != 3) throw new VimException($"--child: expected MODEL:ATTENTION:SIZE, got '{spec}'.");
        string model = parts[0], attention = parts[1];
        int requested = ParseSize(parts[2]);

        using (var warm = zeros(8)) warm.add_(1);   // load libtorch before taking the idle baseline
        long idleKiB = ProcessMemory.ResidentBytes() / 1024;
        ResetPeak();

        // Training steps run without stochastic depth: vim_tiny is registered with drop path 0 and deit_tiny with 0.1, and
        // the same work for both keeps the comparison about the architectures (a dropped branch is still computed and
        // multiplied by its mask, so a rate changes the cost only by that multiply) and every step identical.
        using var module = ModelRegistry.Create(model, overrides: mode.IsTraining ? new BackboneOverrides(DropPathRate: 0, WithCp: mode.WithCp) : null);
        foreach (var mixer in module.modules().OfType<BiMambaMixer>()) mixer.RecomputeInputProjection = mode.RecomputeInProj;
        var net = TokenBackbone(module, model);
        var backbone = (ITokenBackbone)net;
        if (net is VisionTransformer vit)
            vit.Attention = attention == "explicit" ? AttentionKind.Explicit : AttentionKind.ScaledDotProduct;
        if (mode.IsTraining) module.train();
        else module.eval();
        var shape = ModelShape.Of(module, model);
        int inputSize = shape.TilingSize(requested);
        using var gradMode = mode.IsTraining ? enable_grad() : no_grad();
        using var images = randn(batch, 3, inputSize, inputSize, generator: new Generator(0));
        long tokens = shape.Tokens(inputSize);
        Func<RepetitionTime> repetition = mode.IsTraining
            ? () => TrainingStep(net, backbone, images)
            : () =>
            {
                var watch = Stopwatch.StartNew();
                var features = backbone.ForwardTokens(images);
                watch.Stop();
                tokens = features.shape[1];
                return new RepetitionTime(watch.Elapsed.TotalMilliseconds, 0);
            };
        var timings = new List<RepetitionTime>();
        double gflops = double.NaN;
        for (int i = 0; i < warmup + repeats; i++)
        {
            using var scope = NewDisposeScope();
            // The first warm-up forward, untimed, is also counted (hooks cost nothing measurable, but not in a timed one).
            // A training step's FLOPs are counted apart, below: its backward would count checkpointed blocks' recomputation.
            using var counter = i == 0 && warmup > 0 && !mode.IsTraining ? FlopCounter.Start(module) : null;
            var time = repetition();
            if (counter is not null) gflops = counter.Total / 1e9;
            if (i >= warmup) timings.Add(time);
        }
        long allocatorPeakKiB = ProcessMemory.PeakResidentBytes() / 1024;

        // Live-memory peak: from here on every block of 1 MiB or more is mmapped and unmapped at free,
        // freed heap memory is handed back, and the high-water mark restarts from the current resident
        // size; one more repetition then raises it by what is really alive at its peak (a training step's
        // gradients included: the last step's are dropped first). Same treatment for every model (it runs
        // after the timed repetitions, which run under NativeHeapPolicy; its trim threshold goes back to
        // glibc's default here, since the policy keeps freed memory for speed).
        if (Mallopt(MallocMmapThreshold, 1 << 20) == 0 || Mallopt(MallocTrimThreshold, 128 << 10) == 0)
            throw new VimException("bench backbone: mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD) failed.");
        ParameterGradients.Drop(module.parameters());
        MallocTrim(0);
        ResetPeak();
        using (var scope = NewDisposeScope()) repetition();
        long peakKiB = ProcessMemory.PeakResidentBytes() / 1024;
        if (double.IsNaN(gflops))
            using (var counter = FlopCounter.Start(module))
            using (var scope = NewDisposeScope())
            {
                // The forward alone, without autograd (so no block is checkpointed): a training step's FLOPs are its forward's.
                if (mode.IsTraining)
                    using (no_grad()) backbone.ForwardTaps(images);
                else repetition();
                gflops = counter.Total / 1e9;
            }

        var totals = timings.Select(t => t.TotalMs).ToList();
        return new Measurement(model, attention, requested, inputSize, tokens, batch, totals.Median(), totals.Min(),
            (peakKiB - idleKiB) / 1024.0, (allocatorPeakKiB - idleKiB) / 1024.0, "ok", Gflops: gflops,
            ForwardMs: mode.IsTraining ? timings.Select(t => t.ForwardMs).Median() : null,
            BackwardMs: mode.IsTraining ? timings.Select(t => t.BackwardMs).Median() : null);
    }

    /// <summary>
    /// One training step of the backbone's dense feature extraction, timed: <see cref="ITokenBackbone.ForwardTaps"/> (the
    /// maps the detection and segmentation pyramids read; for the classifiers benchmarked here, the last block's), the
    /// loss Σ mean(map), then backward, which fills every reached parameter's gradient. The previous step's gradients are
    /// dropped first, untimed, as a training loop's zero_grad does, so each backward allocates and writes them afresh
    /// rather than adding to them. Needs autograd on; the caller sets the module's mode (train for the benchmark).
    /// The step's tensors are freed by the caller's dispose scope, after the timing, as in the inference repetition.
    /// </summary>
    public static RepetitionTime TrainingStep(nn.Module module, ITokenBackbone backbone, Tensor images)
    {
        ParameterGradients.Drop(module.parameters());
        var watch = Stopwatch.StartNew();
        var maps = backbone.ForwardTaps(images);
        var loss = maps.Select(map => map.mean()).Aggregate((sum, mean) => sum + mean);
        double forwardMs = watch.Elapsed.TotalMilliseconds;
        loss.backward();
        watch.Stop();
        return new RepetitionTime(forwardMs, watch.Elapsed.TotalMilliseconds - forwardMs);
    }

    /// <summary>Times each profiled stage of the forward (see <see cref="StageProfiler"/>) over the timed runs and prints ms per forward.</summary>
    private static void PrintBreakdown(string model, int requested, int batch, int warmup, int repeats)
    {
        using var module = ModelRegistry.Create(model);
        var backbone = (ITokenBackbone)TokenBackbone(module, model);
        module.eval();
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

    private const string MemoryAxis = "Peak memory above idle (MiB)";

    private static string Label(Measurement m) => m.Attention == "-" ? m.Model : $"{m.Model}/{m.Attention}";

    /// <summary>
    /// One row per measurement. A training step's file adds the medians of its forward and backward after the step's
    /// own latency and names the FLOPs column for what it counts, the forward alone.
    /// </summary>
    private static string Csv(IEnumerable<Measurement> results, BenchMode mode)
    {
        var text = new StringBuilder(mode.IsTraining
            ? "model,attention,requested_size,input_size,tokens,batch,median_ms,min_ms,forward_ms,backward_ms,peak_mib,allocator_peak_mib,rounds,forward_gflops,status\n"
            : "model,attention,requested_size,input_size,tokens,batch,median_ms,min_ms,peak_mib,allocator_peak_mib,rounds,gflops,status\n");
        foreach (var m in results)
        {
            var stepSplit = mode.IsTraining
                ? string.Create(CultureInfo.InvariantCulture, $"{m.ForwardMs ?? double.NaN:F3},{m.BackwardMs ?? double.NaN:F3},")
                : "";
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"{m.Model},{m.Attention},{m.RequestedSize},{m.InputSize},{m.Tokens},{m.Batch},{m.MedianMs:F3},{m.MinMs:F3},{stepSplit}{m.PeakMiB:F1},{m.AllocatorPeakMiB:F1},{m.Rounds},{m.Gflops:F4},\"{m.Status.Replace("\"", "'")}\"\n"));
        }
        return text.ToString();
    }

    /// <summary>A training step's forward and backward medians for its console line; nothing for a feature extraction.</summary>
    private static string StepSplit(Measurement m) => m is { ForwardMs: { } forward, BackwardMs: { } backward }
        ? string.Create(CultureInfo.InvariantCulture, $"(forward {forward,9:F1} + backward {backward,9:F1} ms)  ")
        : "";

    private static void PrintRatios(IReadOnlyList<(int Round, Measurement Measurement)> runs, IReadOnlyList<Measurement> results,
        IReadOnlyDictionary<string, ModelShape> shapes, BenchMode mode)
    {
        var subject = mode.RatioSubject;
        var vims = results.Where(r => !shapes[r.Model].IsTransformer && r.Status == "ok").ToList();
        var deits = results.Where(r => shapes[r.Model].IsTransformer && r.Status == "ok").ToList();
        foreach (var vim in vims)
            foreach (var deit in deits.Where(d => d.RequestedSize == vim.RequestedSize))
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"size {vim.RequestedSize,5}: {vim.Model} vs {Label(deit)}: {subject}speed-up {MedianSpeedup(runs, vim, deit):F2}× (DeiT time / Vim time{(vim.Rounds > 1 ? $", median of {vim.Rounds} rounds" : "")}), {subject}memory saving {100 * (1 - vim.PeakMiB / deit.PeakMiB):F1}% (1 − Vim peak / DeiT peak; default allocator {100 * (1 - vim.AllocatorPeakMiB / deit.AllocatorPeakMiB):F1}%)"));
    }

    private static void Chart(IReadOnlyList<Measurement> results, string path, string yLabel, Func<Measurement, double> value, string? title)
    {
        var plot = new ScottPlot.Plot();
        if (title is not null) plot.Title(title);
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
