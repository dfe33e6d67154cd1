namespace Vim.Core.Config;

/// <summary>
/// An untyped config tree as read from YAML, before binding to the typed schema. Every node keeps
/// its source so errors found later (unknown keys, wrong types) can name the file and line.
/// </summary>
public abstract class ConfigNode(ConfigSource source)
{
    public ConfigSource Source { get; } = source;

    public abstract ConfigNode DeepClone();
}

/// <summary>A YAML scalar. <see cref="Quoted"/> distinguishes the string "1" from the number 1.</summary>
public sealed class ConfigScalar(string? value, bool quoted, ConfigSource source) : ConfigNode(source)
{
    /// <summary>The raw text; null for YAML null (<c>null</c>, <c>~</c> or empty).</summary>
    public string? Value { get; } = value;

    public bool Quoted { get; } = quoted;

    public bool IsNull => Value is null;

    public override ConfigNode DeepClone() => new ConfigScalar(Value, Quoted, Source);
}

public sealed class ConfigList(IEnumerable<ConfigNode> items, ConfigSource source) : ConfigNode(source)
{
    public List<ConfigNode> Items { get; } = items.ToList();

    public override ConfigNode DeepClone() => new ConfigList(Items.Select(i => i.DeepClone()), Source);
}

/// <summary>An ordered mapping; each key remembers where it was written.</summary>
public sealed class ConfigMap(ConfigSource source) : ConfigNode(source)
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, (ConfigNode Value, ConfigSource KeySource)> _entries = new(StringComparer.Ordinal);

    public IEnumerable<string> Keys => _order;

    public int Count => _order.Count;

    public bool TryGet(string key, out ConfigNode value)
    {
        if (_entries.TryGetValue(key, out var entry))
        {
            value = entry.Value;
            return true;
        }
        value = null!;
        return false;
    }

    public ConfigNode? this[string key] => _entries.TryGetValue(key, out var e) ? e.Value : null;

    public ConfigSource KeySource(string key) => _entries[key].KeySource;

    public void Set(string key, ConfigNode value, ConfigSource keySource)
    {
        if (!_entries.ContainsKey(key)) _order.Add(key);
        _entries[key] = (value, keySource);
    }

    public bool Remove(string key)
    {
        if (!_entries.Remove(key)) return false;
        _order.Remove(key);
        return true;
    }

    public override ConfigNode DeepClone()
    {
        var copy = new ConfigMap(Source);
        foreach (var key in _order) copy.Set(key, _entries[key].Value.DeepClone(), _entries[key].KeySource);
        return copy;
    }
}
