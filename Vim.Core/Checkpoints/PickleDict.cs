using System.Collections;
using System.Numerics;

namespace Vim.Core.Checkpoints;

/// <summary>
/// A Python dict or <c>collections.OrderedDict</c> from a pickle: insertion-ordered (Python dicts are),
/// keys of any hashable pickle value (strings, integers, tuples as <c>object?[]</c>). Attributes set on
/// an OrderedDict instance (PyTorch's <c>_metadata</c>) are kept apart in <see cref="Attributes"/>,
/// never mixed into the keys.
/// </summary>
public sealed class PickleDict(bool isOrderedDict) : IEnumerable<KeyValuePair<object, object?>>
{
    private readonly List<object> _keys = [];
    private readonly List<object?> _values = [];
    private readonly Dictionary<object, int> _index = new(PickleKeyComparer.Instance);

    public bool IsOrderedDict { get; } = isOrderedDict;

    /// <summary>Instance attributes from a BUILD (e.g. <c>_metadata</c> of a state dict).</summary>
    public Dictionary<string, object?> Attributes { get; } = [];

    public int Count => _keys.Count;
    public IReadOnlyList<object> Keys => _keys;
    public IReadOnlyList<object?> Values => _values;

    public object? this[object key]
    {
        get => TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"key '{key}' is not in the dict");
        set
        {
            if (_index.TryGetValue(key, out var i))
            {
                _values[i] = value;
                return;
            }
            _index[key] = _keys.Count;
            _keys.Add(key);
            _values.Add(value);
        }
    }

    public bool ContainsKey(object key) => _index.ContainsKey(key);

    public bool TryGetValue(object key, out object? value)
    {
        if (_index.TryGetValue(key, out var i))
        {
            value = _values[i];
            return true;
        }
        value = null;
        return false;
    }

    internal void SetValueAt(int position, object? value) => _values[position] = value;

    public IEnumerator<KeyValuePair<object, object?>> GetEnumerator()
    {
        for (var i = 0; i < _keys.Count; i++)
            yield return new KeyValuePair<object, object?>(_keys[i], _values[i]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Python equality for keys: tuples compare by content, integers by value whatever their width.</summary>
    private sealed class PickleKeyComparer : IEqualityComparer<object>
    {
        public static readonly PickleKeyComparer Instance = new();

        public new bool Equals(object? x, object? y)
        {
            if (x is object?[] tx && y is object?[] ty)
            {
                if (tx.Length != ty.Length)
                    return false;
                for (var i = 0; i < tx.Length; i++)
                    if (!ElementEquals(tx[i], ty[i]))
                        return false;
                return true;
            }
            if (x is BigInteger || y is BigInteger)
                return x is not null && y is not null && AsBig(x) == AsBig(y);
            return object.Equals(x, y);
        }

        private bool ElementEquals(object? x, object? y) =>
            x is null || y is null ? x is null && y is null : Equals(x, y);

        private static BigInteger? AsBig(object v) => v switch
        {
            BigInteger b => b,
            long l => l,
            _ => null,
        };

        public int GetHashCode(object obj)
        {
            switch (obj)
            {
                case object?[] tuple:
                    var hash = new HashCode();
                    foreach (var item in tuple)
                        hash.Add(item is null ? 0 : GetHashCode(item));
                    return hash.ToHashCode();
                case BigInteger big:
                    // Must agree with long keys of the same value.
                    return big >= long.MinValue && big <= long.MaxValue ? ((long)big).GetHashCode() : big.GetHashCode();
                default:
                    return obj.GetHashCode();
            }
        }
    }
}
