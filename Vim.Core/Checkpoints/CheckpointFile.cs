using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>
/// A checkpoint read fully into memory: a torch.save zip (.pth) or a safetensors file, recognised by
/// their first bytes. Tensors are CPU TorchSharp tensors owned by this object: they stay valid until
/// <see cref="Dispose"/> (copy them to keep them longer). They are contiguous, except a .pth view with more
/// elements than its storage (expand(), stride 0), which stays a view of that storage as torch.load leaves it.
/// </summary>
public sealed class CheckpointFile : IDisposable
{
    private readonly IReadOnlyList<Tensor> _owned;
    private bool _disposed;

    internal CheckpointFile(string path, CheckpointFormat format, object? root, IReadOnlyList<CheckpointEntry> entries,
        IReadOnlyList<Tensor> owned, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        Format = format;
        Root = root;
        Entries = entries;
        _owned = owned;
        Metadata = metadata;
        Tensors = entries.Where(e => e.Value is Tensor).Select(e => new KeyValuePair<string, Tensor>(e.Name, (Tensor)e.Value!)).ToList();
    }

    public string Path { get; }
    public CheckpointFormat Format { get; }

    /// <summary>
    /// The object tree as saved: <see cref="PickleDict"/> for dicts, <c>List&lt;object?&gt;</c> for lists,
    /// <c>object?[]</c> for tuples, <see cref="Tensor"/>, scalars, <see cref="PickledObject"/>. A
    /// safetensors file gives a flat dict of its tensors.
    /// </summary>
    public object? Root { get; }

    /// <summary>Every leaf in file order, named by its dotted path (e.g. <c>model.layers.0.mixer.A_log</c>, <c>args.lr</c>).</summary>
    public IReadOnlyList<CheckpointEntry> Entries { get; }

    /// <summary>The tensor leaves in file order. A tensor referenced twice in the file appears under both names.</summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> Tensors { get; }

    /// <summary>The safetensors <c>__metadata__</c> strings (empty for .pth files).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Reads a checkpoint; malformed or truncated files raise a <see cref="VimException"/> naming the part at fault.</summary>
    public static CheckpointFile Load(string path)
    {
        RequireFile(path);
        return DetectFormat(path) switch
        {
            CheckpointFormat.TorchZip => TorchZipReader.Read(path),
            _ => SafeTensorsFormat.Read(path),
        };
    }

    /// <summary>
    /// Refuses a path that is no file, before any work: a folder (e.g. a work dir given for its checkpoint) is named as
    /// such, with the checkpoint files in it.
    /// </summary>
    public static void RequireFile(string path)
    {
        if (Directory.Exists(path))
        {
            var inside = Directory.EnumerateFiles(path)
                .Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".pth", StringComparison.Ordinal))
                .Select(f => System.IO.Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
            throw new VimException($"{path}: is a folder; expected a checkpoint file" + (inside.Count == 0
                ? " (it holds no .safetensors or .pth file)"
                : $", e.g. {System.IO.Path.Combine(path, inside.Contains("best.safetensors") ? "best.safetensors" : inside[^1])} (checkpoints there: {string.Join(", ", inside)})"));
        }
        if (!File.Exists(path))
            throw new VimException($"{path}: checkpoint file not found");
    }

    /// <summary>
    /// How torch.save began a file before PyTorch 1.6: its magic number 0x1950a86a20f9469cfc6c pickled with protocol 2
    /// (PROTO 2, LONG1 of 10 bytes).
    /// </summary>
    private static readonly byte[] LegacyTorchMagic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

    /// <summary>Tells the layout from the magic bytes: 'PK\x03\x04' for zip, a JSON '{' after the 8-byte length for safetensors.</summary>
    public static CheckpointFormat DetectFormat(string path)
    {
        var head = new byte[LegacyTorchMagic.Length];
        int read;
        using (var stream = File.OpenRead(path))
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (read >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
            return CheckpointFormat.TorchZip;
        // Checked before the pickle tests: a safetensors header length such as 0x280 also starts with 0x80 0x02.
        if (read >= 9 && head[8] == '{')
            return CheckpointFormat.SafeTensors;
        if (head.AsSpan(0, read).SequenceEqual(LegacyTorchMagic))
            throw new VimException($"{path}: this is the legacy (pre-1.6) torch.save format, a bare pickle stream; re-save it with a current PyTorch (zip format) or convert it to safetensors");
        if (read >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw new VimException($"{path}: a plain Python pickle (protocol {head[1]}), not a torch checkpoint: e.g. a detectron2 model-zoo .pkl, which holds numpy arrays. "
                + "VimDense reads torch.save zip archives and safetensors only and cannot read it; load it in Python and save its arrays as torch tensors (torch.save) or with safetensors");
        // Only the head is read, so the file's own length is reported: a count of bytes read looks like the file's size.
        throw new VimException($"{path}: not a checkpoint: expected a torch.save zip archive (starting with 'PK') or a safetensors file (8-byte length then a JSON '{{'), "
            + $"found a file of {new FileInfo(path).Length} byte(s) starting with hex {Convert.ToHexString(head, 0, Math.Min(read, 9))}");
    }

    /// <summary>
    /// The tensors below a dotted key (e.g. "model", "model_ema", "optimizer.state.0"), renamed relative
    /// to it, in file order; with no key, every tensor under its full name.
    /// </summary>
    public Dictionary<string, Tensor> StateDict(string? key = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new Dictionary<string, Tensor>();
        var prefix = string.IsNullOrEmpty(key) ? "" : key + ".";
        var found = prefix.Length == 0;
        foreach (var entry in Entries)
        {
            if (!entry.Name.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            found = true;
            if (entry.Value is Tensor t && !result.TryAdd(entry.Name[prefix.Length..], t))
                throw new VimException($"{Path}: tensor name '{entry.Name}' occurs twice");
        }
        if (!found)
            throw new VimException($"{Path}: no entry '{key}' in the checkpoint (top-level keys: {string.Join(", ", EntryNames())})");
        return result;
    }

    /// <summary>
    /// The model weights, as the official training script saves them: <c>model</c> (or <c>model_ema</c>
    /// with <paramref name="ema"/>), else <c>state_dict</c>, else the whole file when it is a bare state dict.
    /// </summary>
    public Dictionary<string, Tensor> ModelStateDict(bool ema = false) => StateDict(ModelEntry(ema));

    /// <summary>The entry <see cref="ModelStateDict"/> reads: "model_ema", "model", "state_dict", or "" for a bare state dict (a .pth's top-level keys, a safetensors file's name prefixes).</summary>
    public string ModelEntry(bool ema = false)
    {
        // A flat (safetensors) file has no top-level dict: its entries are its names' first dotted parts, as a published
        // checkpoint's "model.…" tensors.
        var keys = (Format == CheckpointFormat.SafeTensors ? Tensors.Select(t => t.Key.Split('.')[0]) : TopLevelKeys()).ToHashSet();
        if (ema)
            return keys.Contains("model_ema")
                ? "model_ema"
                : throw new VimException($"{Path}: no 'model_ema' entry (top-level keys: {string.Join(", ", EntryNames())})");
        return keys.Contains("model") ? "model" : keys.Contains("state_dict") ? "state_dict" : "";
    }

    /// <summary>The value at a dotted path (a leaf), e.g. "epoch" or "args.lr".</summary>
    public bool TryGetValue(string name, out object? value)
    {
        var entry = Entries.FirstOrDefault(e => e.Name == name);
        value = entry?.Value;
        return entry is not null;
    }

    /// <summary>
    /// The entries a key can name, for error messages: the top-level keys, shortened to their first dotted part, since a
    /// safetensors file's keys are its flat tensor names ("model.backbone…", "optim.…"), hundreds of them.
    /// </summary>
    private IEnumerable<string> EntryNames() => TopLevelKeys().Select(k => k.Split('.')[0]).Distinct();

    public IEnumerable<string> TopLevelKeys() =>
        Root is PickleDict dict ? dict.Keys.Select(CheckpointTree.KeyName) : [];

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var t in _owned)
            t.Dispose();
    }
}
