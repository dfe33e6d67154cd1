namespace Vim.Core.Config;

/// <summary>
/// Where each key of a loaded config was written (file and line, or the --set), kept beside the bound config so a value
/// check that runs after binding (data.mosaic's, data.mixup's, data.filter_cfg's, in the projects that own those
/// settings) names the place to fix, as the binder's own errors do. A config built in code has none.
/// </summary>
public sealed class WrittenKeys
{
    private readonly ConfigMap? _tree;

    public WrittenKeys(ConfigMap? tree) => _tree = tree;

    /// <summary>A config built in code: no key has a place.</summary>
    public static WrittenKeys None { get; } = new(null);

    /// <summary>
    /// Where the dotted key <paramref name="path"/> (e.g. <c>data.mixup.prob</c>) was written; where it was left to its
    /// default, where its nearest written parent section was (the section whose values combine badly); null where none was.
    /// </summary>
    public ConfigSource? Of(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        ConfigSource? nearest = null;
        var map = _tree;
        foreach (var key in path.Split('.'))
        {
            if (map is null || !map.TryGet(key, out var node)) break;
            nearest = map.KeySource(key);
            map = node as ConfigMap;
        }
        return nearest;
    }

    /// <summary>A check's refusal of the key <paramref name="path"/> (which <paramref name="message"/> names): the message after where the key was written.</summary>
    public VimException Refuse(string path, string message) =>
        new(Of(path) is { } source ? $"{source}: {message}" : message);
}
