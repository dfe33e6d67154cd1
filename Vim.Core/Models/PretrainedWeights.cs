using TorchSharp;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Initialises a dense-prediction backbone from an ImageNet classification checkpoint, adapting it as
/// the official det/seg <c>init_weights</c> do, and reports what it loaded, dropped and adapted.
/// <list type="bullet">
/// <item>Vision Mamba (hustvl/Vim, or VimDense): the head is dropped when absent or of another class
/// count, <c>norm_f</c> when the target has none (the detection backbone), RoPE buffers are recomputed
/// rather than loaded, a patch embedding with another kernel is dropped, the class-token position
/// embedding is taken out of its real (middle) slot when the target has no class token, and the patch
/// grid is resized bicubically to the target's grid. The official slot-0 behaviour is available through
/// <see cref="VimConfig.PosEmbedResize"/> = OfficialFirstSlot.</item>
/// <item>DeiT / timm ViT: our key names are timm's, so only the adaptation is needed: head (and the
/// distilled models' head_dist, dist_token) dropped, <c>norm</c> dropped when the target has none,
/// class token and its pos_embed slot 0 dropped when the target has no class token (ViTDet), the
/// distillation slot 1 always dropped, and the grid resized bicubically.</item>
/// </list>
/// A tensor whose shape still differs after this adaptation refuses the load before anything is copied, as torch's
/// load_state_dict raises on size mismatches even non-strict: it means a checkpoint of another variant.
/// </summary>
public static class PretrainedWeights
{
    /// <summary>A tensor every checkpoint of the architecture holds, to tell its weights from another architecture's.</summary>
    private const string VimFirstBlockKey = "layers.0.mixer.in_proj.weight";

    /// <summary>The same for DeiT / timm ViT.</summary>
    private const string DeitFirstBlockKey = "blocks.0.attn.qkv.weight";

    /// <summary>
    /// Loads model.backbone.pretrained (entry model.backbone.pretrained_key) into the backbone inside
    /// <paramref name="model"/> and prints the report; null when no checkpoint is configured or when
    /// <paramref name="weightsFromCheckpoint"/> is set.
    /// </summary>
    /// <param name="weightsFromCheckpoint">A checkpoint holding every weight is loaded next (a resumed run, `vim test`): the
    /// pretrained file is neither read nor required to exist, and the log says so.</param>
    public static StateDictLoadReport? LoadConfigured(nn.Module model, Config.BackboneConfig backbone, TextWriter log, bool weightsFromCheckpoint = false)
    {
        if (backbone.Pretrained is not { Length: > 0 } path) return null;
        if (weightsFromCheckpoint)
        {
            // Its weights would be overwritten at once, and a file moved since the run started must not stop the resume.
            log.WriteLine($"pretrained backbone ({backbone.Name}): {path} not loaded: the checkpoint loaded next holds every weight");
            return null;
        }
        if (!File.Exists(path))
            throw new VimException($"model.backbone.pretrained: checkpoint file '{path}' not found (download it, point the key at it, or set it to null to train from scratch)");
        var report = LoadBackbone(model, path, backbone.PretrainedKey);
        log.WriteLine($"pretrained backbone ({backbone.Name}): {report}");
        return report;
    }

    /// <summary>
    /// Loads <paramref name="path"/> into the one Vim or DeiT backbone inside <paramref name="model"/>
    /// (the bare backbone, a pyramid holding it under <c>net.</c>, or a whole detector / segmentor).
    /// </summary>
    /// <param name="entry">The checkpoint entry holding the weights: "model" (official Vim and DeiT files),
    /// "model_ema", "state_dict", or "" for a bare state dict (timm); null picks the first of those present.</param>
    public static StateDictLoadReport LoadBackbone(nn.Module model, string path, string? entry = "model")
    {
        // A module reachable under two names (a registered child also held in a field) counts once, under the
        // name its parameters carry in the state dict.
        var stateKeys = model.state_dict().Keys.ToList();
        var backbones = model.named_modules().Prepend(("", model))
            .Where(m => m.Item2 is VisionMamba or VisionTransformer)
            .Where(m => m.Item1.Length == 0 || stateKeys.Any(k => k.StartsWith(m.Item1 + ".", StringComparison.Ordinal)))
            .GroupBy(m => m.Item2, ReferenceEqualityComparer.Instance)
            .Select(g => g.OrderBy(m => m.Item1.Length).First()).ToList();
        if (backbones.Count != 1)
            throw new VimException($"{path}: cannot load pretrained weights into {model.GetType().Name}: expected one Vision Mamba or DeiT backbone inside it, found {backbones.Count} ({string.Join(", ", backbones.Select(b => b.Item1))})");
        var (name, module) = backbones[0];
        var prefix = name.Length == 0 ? "" : name + ".";
        return module switch
        {
            VisionMamba vim => Load(model, vim, prefix, path, entry),
            VisionTransformer vit => Load(model, vit, prefix, path, entry),
            _ => throw new VimException($"{path}: pretrained loading supports Vision Mamba and DeiT backbones, not {module.GetType().Name}"),
        };
    }

    /// <param name="target">The module to fill: the bare backbone, or a pyramid holding it.</param>
    /// <param name="backbone">The Vision Mamba inside <paramref name="target"/>.</param>
    /// <param name="prefix">Where the backbone sits in <paramref name="target"/>'s state dict ("" or "net.").</param>
    /// <param name="entry">model (or model_ema) for official files; "" for a bare state dict; null to pick one.</param>
    /// <param name="sourceClassToken">Where the checkpoint's class token sits (official released models: middle).</param>
    public static StateDictLoadReport Load(nn.Module target, VisionMamba backbone, string prefix, string path, string? entry = "model",
        ClassTokenPosition sourceClassToken = ClassTokenPosition.Middle)
    {
        using var scope = NewDisposeScope();
        using var file = CheckpointFile.Load(path);
        var adapted = ReadEntry(file, entry, VimFirstBlockKey);
        var config = backbone.Config;
        var edits = new Edits(adapted);
        var targetState = backbone.state_dict();

        edits.Drop("rope.freqs_cos");
        edits.Drop("rope.freqs_sin");
        edits.DropHeadUnlessItFits(targetState, "head.");
        if (!targetState.ContainsKey("norm_f.weight")) edits.Drop("norm_f.weight");
        edits.DropPatchEmbedOfAnotherKernel(targetState);

        bool sourceHasClass = adapted.ContainsKey("cls_token");
        var sourceSlot = sourceHasClass ? sourceClassToken : ClassTokenPosition.None;
        if (adapted.TryGetValue("pos_embed", out var posEmbed))
        {
            var original = posEmbed.shape;
            var sourceGrid = PositionEmbeddingResizer.SquareGridOf(posEmbed, sourceSlot);
            var targetGrid = (config.GridSize, config.GridSize);
            string how = "";
            if (sourceSlot != ClassTokenPosition.None && config.ClassToken == ClassTokenPosition.None)
            {
                int slot = config.PosEmbedResize == PosEmbedResizeRule.OfficialFirstSlot
                    ? 0
                    : PositionEmbeddingResizer.ClassIndex(sourceSlot, sourceGrid.Item1 * sourceGrid.Item2);
                posEmbed = PositionEmbeddingResizer.RemoveAt(posEmbed, slot);
                sourceSlot = ClassTokenPosition.None;
                edits.Drop("cls_token");
                how = $"class slot {slot} removed, ";
            }
            else if (sourceSlot == ClassTokenPosition.None && config.ClassToken != ClassTokenPosition.None)
            {
                throw new VimException($"{path}: the checkpoint has no class token, but the model expects one ({config.ClassToken}); choose a backbone without a class token");
            }
            else if (sourceSlot != config.ClassToken && sourceSlot != ClassTokenPosition.None)
            {
                // Moving the class slot between head and middle keeps its embedding, re-inserted where the model reads it.
                var cls = posEmbed.narrow(1, PositionEmbeddingResizer.ClassIndex(sourceSlot, sourceGrid.Item1 * sourceGrid.Item2), 1);
                var patches = PositionEmbeddingResizer.RemoveAt(posEmbed, PositionEmbeddingResizer.ClassIndex(sourceSlot, sourceGrid.Item1 * sourceGrid.Item2));
                posEmbed = PositionEmbeddingResizer.InsertAt(patches, cls, PositionEmbeddingResizer.ClassIndex(config.ClassToken, sourceGrid.Item1 * sourceGrid.Item2));
                how = $"class slot moved from {sourceSlot} to {config.ClassToken}, ";
            }
            adapted["pos_embed"] = PositionEmbeddingResizer.Resize(posEmbed, sourceGrid, targetGrid, config.ClassToken, config.PosEmbedResize);
            edits.NoteResize("pos_embed", original, adapted["pos_embed"].shape, how, sourceGrid, targetGrid);
        }
        return Finish(target, prefix, path, file, entry, edits, VimFirstBlockKey, $"embedding width {config.EmbedDim}, depth {config.Depth}, state size {config.StateSize}");
    }

    /// <param name="target">The module to fill: the bare backbone, or a pyramid holding it.</param>
    /// <param name="backbone">The DeiT inside <paramref name="target"/>.</param>
    /// <param name="prefix">Where the backbone sits in <paramref name="target"/>'s state dict ("" or "net.").</param>
    /// <param name="entry">"model" for the official DeiT files; "" for a bare timm state dict; null to pick one.</param>
    public static StateDictLoadReport Load(nn.Module target, VisionTransformer backbone, string prefix, string path, string? entry = "model")
    {
        using var scope = NewDisposeScope();
        using var file = CheckpointFile.Load(path);
        var adapted = ReadEntry(file, entry, DeitFirstBlockKey);
        var config = backbone.Config;
        var edits = new Edits(adapted);
        var targetState = backbone.state_dict();

        edits.DropHeadUnlessItFits(targetState, "head.");
        edits.DropHeadUnlessItFits(targetState, "head_dist.");
        if (!targetState.ContainsKey("norm.weight"))
        {
            edits.Drop("norm.weight");
            edits.Drop("norm.bias");
        }
        edits.DropPatchEmbedOfAnotherKernel(targetState);

        // timm order: [cls, dist (distilled models only), patches...].
        bool sourceHasClass = adapted.ContainsKey("cls_token");
        bool sourceHasDist = adapted.ContainsKey("dist_token");
        int sourceSlots = (sourceHasClass ? 1 : 0) + (sourceHasDist ? 1 : 0);
        edits.Drop("dist_token");
        if (!config.ClassToken) edits.Drop("cls_token");
        if (adapted.TryGetValue("pos_embed", out var posEmbed))
        {
            if (config.ClassToken && !sourceHasClass)
                throw new VimException($"{path}: the checkpoint has no class token, but {backbone.GetType().Name} expects one; choose a backbone without a class token (e.g. deitdet_tiny)");
            var original = posEmbed.shape;
            long patchCount = posEmbed.shape[1] - sourceSlots;
            var sourceGrid = PositionEmbeddingResizer.SquareGridOf(posEmbed.narrow(1, sourceSlots, patchCount), ClassTokenPosition.None);
            var targetGrid = (config.GridSize, config.GridSize);
            var grid = PositionEmbeddingResizer.Resize(posEmbed.narrow(1, sourceSlots, patchCount), sourceGrid, targetGrid, ClassTokenPosition.None);
            adapted["pos_embed"] = config.ClassToken ? cat(new[] { posEmbed.narrow(1, 0, 1), grid }, 1) : grid;
            var removed = new List<string>();
            if (sourceHasClass && !config.ClassToken) removed.Add("class slot 0");
            if (sourceHasDist) removed.Add($"distillation slot {(sourceHasClass ? 1 : 0)}");
            var how = removed.Count > 0 ? string.Join(" and ", removed) + " removed, " : "";
            edits.NoteResize("pos_embed", original, adapted["pos_embed"].shape, how, sourceGrid, targetGrid);
        }
        return Finish(target, prefix, path, file, entry, edits, DeitFirstBlockKey, $"embedding width {config.EmbedDim}, depth {config.Depth}, {config.Heads} heads");
    }

    /// <summary>The state dict under <paramref name="entry"/>, with an error naming the file, the key and what the file holds.</summary>
    private static Dictionary<string, Tensor> ReadEntry(CheckpointFile file, string? entry, string firstBlockKey)
    {
        if (entry is null) return file.ModelStateDict();
        if (entry == "model_ema") return file.ModelStateDict(ema: true);
        if (entry.Length == 0) return file.StateDict();
        var prefix = entry + ".";
        if (!file.Tensors.Any(t => t.Key.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var topLevel = file.Entries.Select(e => e.Name.Split('.')[0]).Distinct().Take(12);
            throw new VimException($"{file.Path}: no weights under '{entry}' (model.backbone.pretrained_key); the file's top-level entries are: "
                + $"{string.Join(", ", topLevel)}. "
                + (WrapperHint(file.Tensors.Select(t => t.Key), firstBlockKey, "") is { } hint
                    ? char.ToUpperInvariant(hint[0]) + hint[1..]
                    : "Set pretrained_key to the entry holding the model's tensors, or to \"\" for a bare state dict (e.g. timm's)."));
        }
        return file.StateDict(entry);
    }

    /// <param name="variant">The backbone's size, for the error when the checkpoint's shapes differ (e.g. "embedding width 192, depth 24").</param>
    private static StateDictLoadReport Finish(nn.Module target, string prefix, string path, CheckpointFile file, string? entry, Edits edits,
        string firstBlockKey, string variant)
    {
        var renamed = edits.State.ToDictionary(kv => prefix + kv.Key, kv => kv.Value);
        var source = $"{path}[{entry switch { null => "model", "" => "state dict", _ => entry }}]";
        // A checkpoint of another architecture (or a wrong entry) would otherwise "load" as nothing but a report full of misses.
        if (!edits.State.ContainsKey(firstBlockKey))
            throw new VimException($"{source}: no '{firstBlockKey}' among the checkpoint's {edits.State.Count} tensor(s) "
                + $"({string.Join(", ", edits.State.Keys.Take(5))}{(edits.State.Count > 5 ? ", …" : "")}): "
                + (WrapperHint(edits.State.Keys, firstBlockKey, ResolvedEntry(file, entry)) ?? "it does not hold weights for this backbone"));
        // Non-strict as the official init_weights (load_state_dict(strict=False)): the backbone's new parts (necks,
        // recomputed RoPE tables) are missing from a classifier checkpoint and the classifier's head is left over. But
        // torch raises on a size mismatch whatever strict says, and so does this, before copying anything: what is
        // left mismatched after the edits above means a checkpoint of another variant.
        var options = new StateDictLoadOptions { Strict = false };
        var mismatched = StateDictLoader.Compare(target, renamed, options, source).Mismatched;
        if (mismatched.Count > 0)
            throw new VimException($"{source}: {mismatched.Count} of the checkpoint's tensors have another shape than the backbone's, e.g. "
                + string.Join("; ", mismatched.OrderBy(m => m.Key == prefix + firstBlockKey ? 0 : 1).Take(3).Select(m =>
                    $"{m.Key[prefix.Length..]}: [{string.Join(", ", m.CheckpointShape)}] in the checkpoint, [{string.Join(", ", m.ModuleShape)}] in the backbone"))
                + $". Nothing was loaded: the checkpoint is of another variant than the backbone ({variant}); check that model.backbone.name "
                + "is the variant the checkpoint was trained as (e.g. a Vim-S checkpoint with vimseg_small, not vimseg_tiny)");
        var report = StateDictLoader.Load(target, renamed, options, source);
        // The RoPE tables are a function of the config, computed at construction: not missing, whatever the file holds.
        var recomputed = new HashSet<string> { prefix + "rope.freqs_cos", prefix + "rope.freqs_sin" };
        return report with
        {
            Missing = report.Missing.Where(k => !recomputed.Contains(k)).ToList(),
            Ignored = report.Ignored.Concat(edits.Dropped).ToList(),
            Adapted = edits.Adapted,
        };
    }

    /// <summary>The entry <see cref="ReadEntry"/> read: as given, or for null the one <see cref="CheckpointFile.ModelStateDict"/> picks.</summary>
    private static string ResolvedEntry(CheckpointFile file, string? entry) => entry ?? file.ModelEntry();

    /// <summary>
    /// When the backbone's weights sit one level further down, under a wrapper's prefix (DDP's module., an mmseg or
    /// mmdet model's backbone.), the pretrained_key that reaches them: keys are never stripped silently, since which
    /// prefix is a wrapper is the user's call.
    /// </summary>
    private static string? WrapperHint(IEnumerable<string> keys, string firstBlockKey, string entry)
    {
        var below = keys.FirstOrDefault(k => k.EndsWith("." + firstBlockKey, StringComparison.Ordinal));
        if (below is null) return null;
        var wrapper = below[..^(firstBlockKey.Length + 1)];
        var key = entry.Length == 0 ? wrapper : $"{entry}.{wrapper}";
        return $"the backbone's weights are there under '{wrapper}.': set model.backbone.pretrained_key to \"{key}\" to read them";
    }

    /// <summary>The checkpoint state being adapted, with what was dropped and what was changed.</summary>
    private sealed class Edits(Dictionary<string, Tensor> state)
    {
        public Dictionary<string, Tensor> State { get; } = state;
        public List<string> Dropped { get; } = [];
        public List<string> Adapted { get; } = [];

        public void Drop(string key)
        {
            if (State.Remove(key)) Dropped.Add(key);
        }

        /// <summary>Drops a classifier head the target lacks or has with another class count.</summary>
        public void DropHeadUnlessItFits(IReadOnlyDictionary<string, Tensor> targetState, string headPrefix)
        {
            foreach (var key in State.Keys.Where(k => k.StartsWith(headPrefix, StringComparison.Ordinal)).ToList())
                if (!targetState.TryGetValue(key, out var t) || !t.shape.SequenceEqual(State[key].shape)) Drop(key);
        }

        /// <summary>A patch projection of another kernel size cannot be reused (the official code drops it too).</summary>
        public void DropPatchEmbedOfAnotherKernel(IReadOnlyDictionary<string, Tensor> targetState)
        {
            if (State.TryGetValue("patch_embed.proj.weight", out var proj) && targetState.TryGetValue("patch_embed.proj.weight", out var targetProj)
                && !proj.shape.Skip(2).SequenceEqual(targetProj.shape.Skip(2)))
            {
                Drop("patch_embed.proj.weight");
                Drop("patch_embed.proj.bias");
            }
        }

        public void NoteResize(string key, long[] from, long[] to, string how, (int, int) fromGrid, (int, int) toGrid)
        {
            if (from.SequenceEqual(to) && how.Length == 0 && fromGrid == toGrid) return;
            Adapted.Add($"{key}: [{string.Join(", ", from)}] → [{string.Join(", ", to)}] ({how}grid {fromGrid.Item1}×{fromGrid.Item2} → {toGrid.Item1}×{toGrid.Item2} bicubic)");
        }
    }
}
