using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// A resumable training checkpoint: model, optimiser state, EMA, the torch RNG state, iteration, data
/// position and config, in one safetensors file (tensors under model./optim./ema./rng., the rest as
/// metadata) with a SHA-256 over every tensor's name and bytes (sha256) and one over the metadata and the
/// tensors' shapes (sha256_meta; files written before it have none and load unchecked). Written atomically (temporary file,
/// flush, rename); a corrupt or mismatched file is refused before anything is modified.
/// Devices: tensors are copied to host memory once for the checksum and the writer (a no-op on the CPU);
/// loading copies each saved tensor into the live one, on whatever device the model, optimiser and EMA
/// are. Only the CPU generator is saved: TorchSharp cannot read a CUDA generator (dropout, drop-path on the
/// GPU), so a resumed GPU run is not bitwise equal to the uninterrupted one, as a resumed CPU run is.
/// </summary>
public static class TrainingCheckpoint
{
    public const string FormatTag = "vimdense-training-checkpoint/1";

    /// <param name="rankGenerators">
    /// Every rank's torch generator state, indexed by rank (<see cref="TrainingState.GeneratorRanks"/> of them), when ranks draw
    /// from their own seeds; null when they share rank 0's, the caller's.
    /// </param>
    public static void Save(string path, nn.Module model, IOptimizer optimizer, ExponentialMovingAverage? ema, TrainingState state,
        IReadOnlyList<Tensor>? rankGenerators = null)
    {
        if ((rankGenerators?.Count ?? 1) != state.GeneratorRanks)
            throw new ArgumentException($"{state.GeneratorRanks} generator ranks announced, {rankGenerators?.Count ?? 1} states given", nameof(rankGenerators));
        using var scope = NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        // One device-to-host copy per tensor, shared by the checksum and the writer (both read host memory).
        foreach (var (name, t) in model.state_dict()) tensors.Add(new($"model.{name}", t.cpu()));
        foreach (var (name, t) in optimizer.StateTensors()) tensors.Add(new($"optim.{name}", t.cpu()));
        if (ema is not null)
            foreach (var (name, t) in ema.Shadow) tensors.Add(new($"ema.{name}", t.cpu()));
        tensors.Add(new("rng.torch", rankGenerators?[0] ?? torch.random.get_rng_state()));
        for (int rank = 1; rank < state.GeneratorRanks; rank++)
            tensors.Add(new(GeneratorKey(rank), rankGenerators![rank]));

        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatTag,
            ["iteration"] = state.Iteration.ToString(CultureInfo.InvariantCulture),
            ["optimizer_steps"] = state.OptimizerSteps.ToString(CultureInfo.InvariantCulture),
            ["data_epoch"] = state.Data.Epoch.ToString(CultureInfo.InvariantCulture),
            ["data_index"] = state.Data.IndexInEpoch.ToString(CultureInfo.InvariantCulture),
            ["best_metric"] = state.BestMetric?.ToString("R", CultureInfo.InvariantCulture) ?? "",
            ["config"] = state.ConfigYaml,
            ["has_ema"] = ema is null ? "false" : "true",
            ["sha256"] = Checksum(tensors),
        };
        if (ema is not null) metadata[EvaluatedWeightsKey] = state.EvaluatesEma ? "ema" : "model";
        if (state.GeneratorRanks > 1)
            metadata["rng_ranks"] = state.GeneratorRanks.ToString(CultureInfo.InvariantCulture);
        if (state.LossScale is { } lossScale)
        {
            metadata["loss_scale"] = lossScale.Scale.ToString("R", CultureInfo.InvariantCulture);
            metadata["loss_scale_finite_steps"] = lossScale.FiniteStepsInARow.ToString(CultureInfo.InvariantCulture);
        }
        if (state.EarlyStopping is { } stopping)
        {
            metadata[EarlyStoppingMonitorKey] = stopping.Monitor;
            metadata[EarlyStoppingRuleKey] = EarlyStopping.RuleName(stopping.Rule);
            // "R": the best value must come back bit for bit, or a resumed run could count an evaluation the uninterrupted one did not.
            metadata[EarlyStoppingBestKey] = stopping.Best?.ToString("R", CultureInfo.InvariantCulture) ?? "";
            metadata[EarlyStoppingCountKey] = stopping.EvaluationsWithoutImprovement.ToString(CultureInfo.InvariantCulture);
        }
        foreach (var (index, plateau) in state.Plateaus ?? new Dictionary<int, PlateauState>())
            metadata[PlateauKeyPrefix + index.ToString(CultureInfo.InvariantCulture)] = plateau.ToText();
        metadata[MetadataChecksumKey] = MetadataChecksum(metadata, tensors);
        SafeTensorsFormat.Write(path, tensors, metadata);
    }

    /// <summary>
    /// Loads only the weights of a training checkpoint (its trained "model" or, with <paramref name="ema"/>,
    /// its "ema" copy) into <paramref name="model"/>, strictly, for testing and inference. A file <see cref="Save"/> or
    /// <see cref="Publish"/> wrote is refused when its checksums no longer match its contents (a corrupt copy would
    /// otherwise predict silently wrong). Errors name the file.
    /// </summary>
    public static void LoadWeights(nn.Module model, string path, bool ema)
    {
        using var file = CheckpointFile.Load(path);
        if (IsTrainingCheckpoint(file) || IsPublished(file)) RequireChecksums(file);
        var entry = WeightsEntry(file, ema, "without --ema");
        try
        {
            var weights = file.StateDict(entry);
            RequireFit(model, weights, path, entry, file.Metadata);
            StateDictLoader.Load(model, weights, new StateDictLoadOptions { Strict = true }, $"{path}[{entry}]");
        }
        catch (VimException e) when (!e.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new VimException($"{path}: does not fit the config's model: {e.Message}", e);
        }
    }

    /// <summary>
    /// The entry holding a training checkpoint's weights: its trained "model", or with <paramref name="ema"/> its "ema" copy,
    /// refused (the file named, <paramref name="howWithout"/> saying how to ask for the trained weights) when the run kept none.
    /// </summary>
    internal static string WeightsEntry(CheckpointFile file, bool ema, string howWithout)
    {
        if (ema && file.Metadata.TryGetValue("has_ema", out var hasEma) && hasEma == "false")
        {
            // A published file lacks the "ema" entry whatever its run kept: blaming train.ema_momentum would send the user to retrain.
            if (IsPublished(file) && file.Metadata.TryGetValue("weights", out var kept) && kept == "ema")
                throw new VimException($"{file.Path}: a published checkpoint holds one set of weights, here its run's EMA weights (published with --ema); read them {howWithout}");
            var why = IsPublished(file)
                ? "a published checkpoint keeps one set of weights, here its run's trained ones; publish the training checkpoint with --ema for its EMA weights"
                : "the run that wrote it had no train.ema_momentum";
            throw new VimException($"{file.Path}: holds no EMA weights ({why}); use its trained weights ({howWithout})");
        }
        return ema ? "ema" : "model";
    }

    /// <summary>Whether a file's metadata marks it as written by <see cref="Save"/>.</summary>
    internal static bool IsTrainingCheckpoint(CheckpointFile file) =>
        file.Metadata.TryGetValue("format", out var format) && format == FormatTag;

    /// <summary>Whether a file's metadata marks it as written by <see cref="Publish"/>.</summary>
    private static bool IsPublished(CheckpointFile file) =>
        file.Metadata.TryGetValue("format", out var format) && format == PublishedFormatTag;

    /// <summary>
    /// Refuses a file that is no training checkpoint, or whose tensors, metadata or shapes no longer hash to the checksums
    /// written with them, before anything is read from it.
    /// </summary>
    internal static void RequireIntact(CheckpointFile file)
    {
        var path = file.Path;
        var meta = file.Metadata;
        if (IsPublished(file))
            throw new VimException($"{path}: a published checkpoint (metadata 'format' '{PublishedFormatTag}': `vim checkpoint publish` kept the weights " +
                "alone, without the optimiser state and training position), not a training checkpoint; `vim test`, `vim infer` and --load-from " +
                "read it, while --resume and `vim checkpoint publish` need the iter_*.safetensors or best.safetensors that `vim train` wrote");
        if (!meta.TryGetValue("format", out var format) || format != FormatTag)
            throw new VimException($"{path}: not a VimDense training checkpoint (metadata 'format' is '{format ?? "missing"}', expected '{FormatTag}')");
        RequireChecksums(file);
    }

    /// <summary>Refuses a file whose tensors, metadata or shapes no longer hash to the checksums written with them.</summary>
    private static void RequireChecksums(CheckpointFile file)
    {
        var path = file.Path;
        var meta = file.Metadata;
        var expected = Require(meta, "sha256", path);
        var actual = Checksum(file.Tensors);
        if (actual != expected)
            throw new VimException($"{path}: checksum mismatch (file says {expected[..Math.Min(12, expected.Length)]}…, contents hash to {actual[..12]}…): the file is corrupt; use an earlier checkpoint");
        if (meta.TryGetValue(MetadataChecksumKey, out var expectedMeta))
        {
            var actualMeta = MetadataChecksum(meta, file.Tensors);
            if (actualMeta != expectedMeta)
                throw new VimException($"{path}: checksum mismatch in the metadata or tensor shapes (file says {expectedMeta[..Math.Min(12, expectedMeta.Length)]}…, "
                    + $"they hash to {actualMeta[..12]}…): the header is corrupt (iteration, data position, config…); use an earlier checkpoint");
        }
    }

    /// <summary>
    /// Restores everything into the given (freshly built) objects and returns the loop state. The torch generator is
    /// <paramref name="rank"/>'s own state where the checkpoint holds one (<see cref="TrainingState.GeneratorRanks"/>), else rank 0's.
    /// </summary>
    public static TrainingState Load(string path, nn.Module model, IOptimizer optimizer, ExponentialMovingAverage? ema, int rank = 0)
    {
        using var file = CheckpointFile.Load(path);
        RequireIntact(file);
        var meta = file.Metadata;

        // The weights' fit first: a checkpoint of the other task would otherwise be blamed on train.ema_momentum.
        var modelState = file.StateDict("model");
        RequireFit(model, modelState, path, "model", meta);
        bool hasEma = Require(meta, "has_ema", path) == "true";
        if (hasEma != (ema is not null))
            throw new VimException($"{path}: the checkpoint {(hasEma ? "has" : "has no")} EMA weights but this run {(ema is null ? "does not use" : "uses")} EMA (train.ema_momentum)");

        // The objects are freshly built for the resume; if a part is refused below they are discarded
        // with the run, and the checkpoint files themselves are never modified by loading.
        var optimState = file.StateDict("optim");
        StateDictLoader.Load(model, modelState, new StateDictLoadOptions { Strict = true }, $"{path}[model]");
        long optimizerSteps = long.Parse(Require(meta, "optimizer_steps", path), CultureInfo.InvariantCulture);
        try { optimizer.LoadState(optimState, optimizerSteps); }
        catch (VimException e) { throw new VimException($"{path}: {e.Message}", e); } // the optimiser knows keys, not files
        if (ema is not null)
        {
            var emaState = file.StateDict("ema");
            using var noGrad = no_grad();
            foreach (var (name, shadow) in ema.Shadow)
            {
                if (!emaState.TryGetValue(name, out var saved) || !saved.shape.SequenceEqual(shadow.shape))
                    throw new VimException($"{path}: EMA tensor '{name}' is missing or has another shape");
                shadow.copy_(saved);
            }
        }
        int generatorRanks = meta.TryGetValue("rng_ranks", out var ranksText) ? ParseGeneratorRanks(ranksText, path) : 1;
        var generators = file.StateDict("rng");
        var generatorKey = rank < generatorRanks ? GeneratorKey(rank)[4..] : "torch";
        if (!generators.TryGetValue(generatorKey, out var generator))
            throw new VimException($"{path}: metadata 'rng_ranks' is {generatorRanks} but the tensor 'rng.{generatorKey}' is missing");
        torch.random.set_rng_state(generator);

        var best = Require(meta, "best_metric", path);
        return new TrainingState(
            int.Parse(Require(meta, "iteration", path), CultureInfo.InvariantCulture),
            long.Parse(Require(meta, "optimizer_steps", path), CultureInfo.InvariantCulture),
            new DataPosition(int.Parse(Require(meta, "data_epoch", path), CultureInfo.InvariantCulture),
                long.Parse(Require(meta, "data_index", path), CultureInfo.InvariantCulture)),
            best.Length == 0 ? null : double.Parse(best, CultureInfo.InvariantCulture),
            Require(meta, "config", path),
            LossScaleOf(meta, path),
            generatorRanks,
            EarlyStoppingOf(meta, path),
            PlateausOf(meta, path));
    }

    /// <summary>Metadata "reduce_on_plateau/&lt;entry index&gt;": a ReduceOnPlateauLR's <see cref="PlateauState"/>.</summary>
    private const string PlateauKeyPrefix = "reduce_on_plateau/";

    private static Dictionary<int, PlateauState>? PlateausOf(IReadOnlyDictionary<string, string> meta, string path)
    {
        var states = new Dictionary<int, PlateauState>();
        foreach (var (key, text) in meta)
        {
            if (!key.StartsWith(PlateauKeyPrefix, StringComparison.Ordinal)) continue;
            if (!int.TryParse(key[PlateauKeyPrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var index) || PlateauState.Parse(text) is not { } state)
                throw new VimException($"{path}: metadata '{key}' ('{text}') must be a schedule.param_scheduler index holding best;bad evaluations;cooldown;reduction iterations");
            states[index] = state;
        }
        return states.Count == 0 ? null : states;
    }

    private const string EarlyStoppingMonitorKey = "early_stopping_monitor", EarlyStoppingRuleKey = "early_stopping_rule",
        EarlyStoppingBestKey = "early_stopping_best", EarlyStoppingCountKey = "early_stopping_evaluations_without_improvement";

    /// <summary>train.early_stopping's progress, in checkpoints of runs that stop early (older checkpoints have none: the count starts at 0).</summary>
    private static EarlyStoppingState? EarlyStoppingOf(IReadOnlyDictionary<string, string> meta, string path)
    {
        if (!meta.TryGetValue(EarlyStoppingMonitorKey, out var monitor)) return null;
        var ruleText = Require(meta, EarlyStoppingRuleKey, path);
        var bestText = Require(meta, EarlyStoppingBestKey, path);
        var countText = Require(meta, EarlyStoppingCountKey, path);
        double best = 0;
        if (EarlyStopping.ParseRule(ruleText) is not { } rule
            || (bestText.Length > 0 && (!double.TryParse(bestText, NumberStyles.Float, CultureInfo.InvariantCulture, out best) || !double.IsFinite(best)))
            || !int.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            throw new VimException($"{path}: metadata '{EarlyStoppingRuleKey}' ('{ruleText}') must be greater or less, '{EarlyStoppingBestKey}' ('{bestText}') " +
                $"a finite number or empty, and '{EarlyStoppingCountKey}' ('{countText}') a count ≥ 0");
        return new EarlyStoppingState(monitor, rule, bestText.Length > 0 ? best : null, count);
    }


    /// <summary>Which weights the run's evaluations judged ("ema" or "model"; train.ema_validate), in checkpoints of runs with an EMA.</summary>
    public const string EvaluatedWeightsKey = "evaluated_weights";

    /// <summary>
    /// A note for a reader of <paramref name="path"/>'s trained weights (or with <paramref name="ema"/> its EMA) whose run judged
    /// the other set: its logged metrics, best.safetensors' choice and early stopping would not be those of the weights read.
    /// Null when they agree, or the file does not say (a published file, an older checkpoint, one without an EMA).
    /// </summary>
    public static string? EvaluatedWeightsNote(string path, bool ema)
    {
        if (CheckpointFile.DetectFormat(path) != CheckpointFormat.SafeTensors) return null;
        var meta = SafeTensorsFormat.ReadMetadata(path);
        if (!meta.TryGetValue(EvaluatedWeightsKey, out var judged) || (judged == "ema") == ema) return null;
        return judged == "ema"
            ? $"note: {path}'s run evaluated its EMA weights (train.ema_validate), which chose best.safetensors; these are its trained weights, --ema reads the EMA"
            : $"note: {path}'s run evaluated its trained weights (train.ema_validate: false), which chose best.safetensors; these are its EMA weights, without --ema the trained ones";
    }

    /// <summary>The metadata 'format' of a <see cref="Publish"/>ed file: weights alone, which `vim test`, `vim infer` and load_from read but --resume refuses.</summary>
    public const string PublishedFormatTag = "vimdense-weights/1";

    /// <summary>
    /// mmdet's publish_model: the weights of a training checkpoint alone, to share or release. The optimiser state, the
    /// generators and the training position are dropped (a checkpoint of AdamW carries two more copies of every weight);
    /// the trained weights, or with <paramref name="ema"/> the EMA copy, are kept under "model." so every reader of
    /// trained weights takes the file as it is; the config stays in the metadata. The source's checksums are verified
    /// first, so a corrupt checkpoint is not passed on. The file is written next to <paramref name="output"/> and named
    /// &lt;its name&gt;-&lt;the first 8 hex digits of the file's SHA-256&gt;.safetensors, as publish_model names it.
    /// Returns that path.
    /// </summary>
    public static string Publish(string input, string output, bool ema)
    {
        using var scope = NewDisposeScope();
        using var file = CheckpointFile.Load(input);
        RequireIntact(file);
        var meta = file.Metadata;
        var entry = WeightsEntry(file, ema, "without --ema");
        var tensors = file.StateDict(entry).Select(t => new KeyValuePair<string, Tensor>($"model.{t.Key}", t.Value)).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["format"] = PublishedFormatTag,
            ["source"] = Path.GetFileName(input),
            ["weights"] = entry,
            ["iteration"] = Require(meta, "iteration", input),
            ["config"] = Require(meta, "config", input),
            ["has_ema"] = "false",
            ["sha256"] = Checksum(tensors),
        };
        metadata[MetadataChecksumKey] = MetadataChecksum(metadata, tensors);
        var stem = Path.GetFileNameWithoutExtension(output);
        return SafeTensorsFormat.WriteThenName(output, tensors, metadata, written =>
        {
            using var stream = File.OpenRead(written);
            var hash = Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
            return Path.Combine(Path.GetDirectoryName(Path.GetFullPath(output))!, $"{stem}-{hash[..8]}.safetensors");
        });
    }

    /// <summary>Rank 0's generator is rng.torch, as in checkpoints of runs whose ranks share it; rank r's is rng.torch_rank&lt;r&gt;.</summary>
    private static string GeneratorKey(int rank) => rank == 0 ? "rng.torch" : $"rng.torch_rank{rank.ToString(CultureInfo.InvariantCulture)}";

    private static int ParseGeneratorRanks(string text, string path) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ranks) && ranks >= 1
            ? ranks
            : throw new VimException($"{path}: metadata 'rng_ranks' must be a rank count ≥ 1, got '{text}'");

    /// <summary>The loss scaler's state, in checkpoints of runs that scaled the loss (fp16 autocast).</summary>
    private static LossScaleState? LossScaleOf(IReadOnlyDictionary<string, string> meta, string path)
    {
        if (!meta.TryGetValue("loss_scale", out var scale)) return null;
        if (!double.TryParse(scale, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value) || value <= 0
            || !int.TryParse(Require(meta, "loss_scale_finite_steps", path), NumberStyles.Integer, CultureInfo.InvariantCulture, out var steps) || steps < 0)
            throw new VimException($"{path}: metadata 'loss_scale' ('{scale}') must be a positive number and 'loss_scale_finite_steps' " +
                $"('{meta.GetValueOrDefault("loss_scale_finite_steps")}') a count ≥ 0");
        return new LossScaleState(value, steps);
    }

    /// <summary>
    /// Refuses weights whose names or shapes differ from the model's in a few lines: counts, a few example keys per kind
    /// (spread over the top-level modules), and what the checkpoint was trained with (its stored config), since a
    /// checkpoint of another task, backbone or class count is the usual cause. The full key listing of a strict load
    /// would run to hundreds of lines for a checkpoint of the other task.
    /// </summary>
    private static void RequireFit(nn.Module model, IReadOnlyDictionary<string, Tensor> weights, string path, string entry,
        IReadOnlyDictionary<string, string> meta)
    {
        var fit = StateDictLoader.Compare(model, weights, sourceName: $"{path}[{entry}]");
        if (fit.IsComplete) return;

        static string Shape(long[] shape) => $"[{string.Join(", ", shape)}]";
        var parts = new List<string>();
        if (fit.Missing.Count > 0) parts.Add($"{fit.Missing.Count} missing in the checkpoint (e.g. {Examples(fit.Missing)})");
        if (fit.Unexpected.Count > 0) parts.Add($"{fit.Unexpected.Count} not in the model (e.g. {Examples(fit.Unexpected)})");
        if (fit.Mismatched.Count > 0)
            parts.Add($"{fit.Mismatched.Count} of another shape (e.g. " +
                string.Join(", ", fit.Mismatched.Take(2).Select(m => $"{m.Key}: {Shape(m.CheckpointShape)} in the checkpoint, {Shape(m.ModuleShape)} in the model")) + ")");
        int modelTensors = fit.Loaded.Count + fit.Missing.Count + fit.Mismatched.Count;
        var trainedWith = TrainedWith(meta);
        throw new VimException(
            $"{path}: its '{entry}' weights do not fit the model the config builds: {fit.Loaded.Count} of the model's {modelTensors} tensors match; " +
            string.Join("; ", parts) + ". " +
            (trainedWith is null
                ? "Give a checkpoint that `vim train` wrote for this config."
                : $"The checkpoint was trained with {trainedWith}: use that config (its work dir keeps it as config.yaml), or a checkpoint trained with this one."));
    }

    /// <summary>Up to four keys, one per top-level module first, so a mismatch of whole heads shows which heads.</summary>
    private static string Examples(IReadOnlyList<string> keys)
    {
        var firstPerModule = keys.GroupBy(k => k.Split('.')[0]).Select(g => g.First()).Take(4).ToList();
        var shown = firstPerModule.Concat(keys.Except(firstPerModule)).Take(4);
        return string.Join(", ", shown) + (keys.Count > 4 ? ", …" : "");
    }

    /// <summary>"task: …, model.backbone.name: …, model.num_classes: …" from the config a training checkpoint stores, if readable.</summary>
    private static string? TrainedWith(IReadOnlyDictionary<string, string> meta)
    {
        if (!meta.TryGetValue("config", out var yaml)) return null;
        ConfigNode root;
        try
        {
            root = ConfigLoader.Parse(yaml, "checkpoint metadata 'config'");
        }
        catch (Exception e) when (e is VimException or YamlDotNet.Core.YamlException)
        {
            return null;
        }
        ConfigNode? Node(params string[] keys)
        {
            ConfigNode? node = root;
            foreach (var key in keys) node = (node as ConfigMap)?[key];
            return node;
        }
        string? Value(params string[] keys) => (Node(keys) as ConfigScalar)?.Value;
        var known = new[] { ("task", Value("task")), ("model.backbone.name", Value("model", "backbone", "name")), ("model.num_classes", Value("model", "num_classes")) }
            .Where(p => p.Item2 is not null).Select(p => $"{p.Item1}: {p.Item2}").ToList();
        // A detector's RPN and box head outputs are also shaped by its anchors and box pooler: with the task, backbone and
        // class count alike, these are what the user has to match.
        if (Value("task") == "detection")
            foreach (var key in new[] { "rpn_anchor_sizes", "rpn_anchor_aspect_ratios", "box_pooler_resolution" })
                if (Node("model", "det_head", key) is { } node)
                    known.Add($"model.det_head.{key}: {ConfigWriter.Inline(node)}");
        return known.Count == 0 ? null : string.Join(", ", known);
    }

    private static string Require(IReadOnlyDictionary<string, string> meta, string key, string path) =>
        meta.TryGetValue(key, out var value)
            ? value
            : throw new VimException($"{path}: training checkpoint metadata lacks '{key}'");

    /// <summary>
    /// Metadata key of the SHA-256 over the metadata and the tensors' shapes. A key of its own rather than a wider
    /// sha256, so checkpoints written before it keep loading: their sha256 still covers what it always did.
    /// </summary>
    private const string MetadataChecksumKey = "sha256_meta";

    /// <summary>
    /// SHA-256 over every metadata pair but the checksums (sorted by key, so the order the header lists them in does not
    /// matter) and every tensor's name and shape, each string and number length-prefixed so no two contents run together.
    /// </summary>
    private static string MetadataChecksum(IReadOnlyDictionary<string, string> metadata, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void AddNumber(long value)
        {
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
            hash.AppendData(bytes);
        }
        void Add(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            AddNumber(bytes.Length);
            hash.AppendData(bytes);
        }
        foreach (var (key, value) in metadata.Where(kv => kv.Key is not ("sha256" or MetadataChecksumKey)).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            Add(key);
            Add(value);
        }
        foreach (var (name, tensor) in tensors)
        {
            Add(name);
            AddNumber(tensor.shape.Length);
            foreach (var size in tensor.shape)
                AddNumber(size);
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    private static string Checksum(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, tensor) in tensors)
        {
            using var scope = NewDisposeScope();
            hash.AppendData(Encoding.UTF8.GetBytes(name));
            hash.AppendData(Encoding.UTF8.GetBytes(tensor.dtype.ToString()));
            var contiguous = tensor.cpu().contiguous();
            hash.AppendData(contiguous.bytes);
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }
}
