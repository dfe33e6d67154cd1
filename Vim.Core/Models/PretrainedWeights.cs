using TorchSharp;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Initialises a Vision Mamba backbone from an official (hustvl/Vim) or VimDense classification
/// checkpoint, adapting it as the official det/seg init_weights do, but with the class slot handled
/// correctly: the head is dropped when absent or of another class count, RoPE buffers are
/// recomputed rather than loaded, a patch embedding with another kernel is dropped, the class-token
/// position embedding is taken out of its real (middle) slot when the target has no class token,
/// and the patch grid is resized bicubically to the target's grid. The official slot-0 behaviour is
/// available through <see cref="VimConfig.PosEmbedResize"/> = OfficialFirstSlot.
/// </summary>
public static class PretrainedWeights
{
    /// <param name="target">The module to fill: the bare backbone, or a pyramid holding it.</param>
    /// <param name="backbone">The Vision Mamba inside <paramref name="target"/>.</param>
    /// <param name="prefix">Where the backbone sits in <paramref name="target"/>'s state dict ("" or "net.").</param>
    /// <param name="entry">model (or model_ema) for official files; null for a bare state dict.</param>
    /// <param name="sourceClassToken">Where the checkpoint's class token sits (official released models: middle).</param>
    public static StateDictLoadReport Load(nn.Module target, VisionMamba backbone, string prefix, string path, string? entry = "model",
        ClassTokenPosition sourceClassToken = ClassTokenPosition.Middle)
    {
        using var scope = NewDisposeScope();
        using var file = CheckpointFile.Load(path);
        var source = entry switch
        {
            null => file.ModelStateDict(),
            "model_ema" => file.ModelStateDict(ema: true),
            _ => file.StateDict(entry),
        };
        var config = backbone.Config;
        var adapted = new Dictionary<string, Tensor>(source);
        var dropped = new List<string>();
        void Drop(string key)
        {
            if (adapted.Remove(key)) dropped.Add(key);
        }

        Drop("rope.freqs_cos");
        Drop("rope.freqs_sin");
        var targetState = backbone.state_dict();
        foreach (var key in adapted.Keys.Where(k => k.StartsWith("head.", StringComparison.Ordinal)).ToList())
            if (!targetState.TryGetValue(key, out var t) || !t.shape.SequenceEqual(adapted[key].shape)) Drop(key);
        if (adapted.TryGetValue("patch_embed.proj.weight", out var proj) && targetState.TryGetValue("patch_embed.proj.weight", out var targetProj)
            && !proj.shape.Skip(2).SequenceEqual(targetProj.shape.Skip(2)))
        {
            Drop("patch_embed.proj.weight");
            Drop("patch_embed.proj.bias");
        }

        bool sourceHasClass = adapted.ContainsKey("cls_token");
        var sourceSlot = sourceHasClass ? sourceClassToken : ClassTokenPosition.None;
        if (adapted.TryGetValue("pos_embed", out var posEmbed))
        {
            var sourceGrid = PositionEmbeddingResizer.SquareGridOf(posEmbed, sourceSlot);
            var targetGrid = (config.GridSize, config.GridSize);
            if (sourceSlot != ClassTokenPosition.None && config.ClassToken == ClassTokenPosition.None)
            {
                int slot = config.PosEmbedResize == PosEmbedResizeRule.OfficialFirstSlot
                    ? 0
                    : PositionEmbeddingResizer.ClassIndex(sourceSlot, sourceGrid.Item1 * sourceGrid.Item2);
                posEmbed = PositionEmbeddingResizer.RemoveAt(posEmbed, slot);
                sourceSlot = ClassTokenPosition.None;
                Drop("cls_token");
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
            }
            adapted["pos_embed"] = PositionEmbeddingResizer.Resize(posEmbed, sourceGrid, targetGrid, config.ClassToken, config.PosEmbedResize);
        }

        var renamed = adapted.ToDictionary(kv => prefix + kv.Key, kv => kv.Value);
        var report = StateDictLoader.Load(target, renamed, new StateDictLoadOptions { Strict = false }, $"{path}[{entry ?? "state dict"}]");
        return report with { Ignored = report.Ignored.Concat(dropped).ToList() };
    }
}
