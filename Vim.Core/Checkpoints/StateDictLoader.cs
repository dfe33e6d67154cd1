using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>Copies a checkpoint's tensors into a TorchSharp module's parameters and buffers by name.</summary>
public static class StateDictLoader
{
    /// <summary>
    /// Loads <paramref name="source"/> into <paramref name="module"/> (values converted to each
    /// parameter's dtype and device) and reports missing, unexpected, mismatched and ignored keys.
    /// In strict mode an incomplete match throws a <see cref="VimException"/> carrying the report and
    /// leaves the module untouched.
    /// </summary>
    /// <param name="sourceName">How the report names the checkpoint, e.g. "vim_t.pth[model]".</param>
    public static StateDictLoadReport Load(nn.Module module, IReadOnlyDictionary<string, Tensor> source,
        StateDictLoadOptions? options = null, string sourceName = "state dict")
    {
        options ??= new StateDictLoadOptions();
        var (report, renamed, target) = Match(module, source, options, sourceName);
        if (options.Strict && !report.IsComplete)
            throw new VimException($"strict state-dict load failed, nothing was copied:\n{report}");

        using (no_grad())
        {
            foreach (var key in report.Loaded)
                target[key].copy_(renamed[key]);
        }
        return report;
    }

    /// <summary>
    /// What <see cref="Load"/> would load, miss, refuse and ignore, without copying anything (for callers that word
    /// their own error before a strict load).
    /// </summary>
    public static StateDictLoadReport Compare(nn.Module module, IReadOnlyDictionary<string, Tensor> source,
        StateDictLoadOptions? options = null, string sourceName = "state dict") =>
        Match(module, source, options ?? new StateDictLoadOptions(), sourceName).Report;

    private static (StateDictLoadReport Report, Dictionary<string, Tensor> Renamed, Dictionary<string, Tensor> Target) Match(
        nn.Module module, IReadOnlyDictionary<string, Tensor> source, StateDictLoadOptions options, string sourceName)
    {
        var target = module.state_dict();
        var ignored = new List<string>();
        var renamed = new Dictionary<string, Tensor>();
        foreach (var (originalKey, tensor) in source)
        {
            var key = options.RenameKey?.Invoke(originalKey) ?? originalKey;
            if (options.IgnoreKey?.Invoke(key) == true)
            {
                ignored.Add(key);
                continue;
            }
            if (!renamed.TryAdd(key, tensor))
                throw new VimException($"{sourceName}: two checkpoint keys map to '{key}' (one of them is '{originalKey}')");
        }

        var loaded = new List<string>();
        var unexpected = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        foreach (var (key, tensor) in renamed)
        {
            if (!target.TryGetValue(key, out var destination))
                unexpected.Add(key);
            else if (!destination.shape.SequenceEqual(tensor.shape))
                mismatched.Add(new ShapeMismatch(key, destination.shape, tensor.shape));
            else
                loaded.Add(key);
        }
        var missing = target.Keys.Where(k => !renamed.ContainsKey(k) && options.IgnoreKey?.Invoke(k) != true).ToList();
        return (new StateDictLoadReport(sourceName, loaded, missing, unexpected, mismatched, ignored), renamed, target);
    }
}
