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

    /// <summary>
    /// Python equality for keys: tuples compare by content, integers by value whatever their width. Tuple keys come from
    /// the file, so both walks are bounded: nesting by <see cref="CheckpointTree.MaxDepth"/> (deeper recursion would
    /// overflow the stack), and the elements compared or hashed, since a tuple holding one shared tuple twice, 64 levels
    /// down, has 2^64 elements.
    /// </summary>
    private sealed class PickleKeyComparer : IEqualityComparer<object>
    {
        public static readonly PickleKeyComparer Instance = new();

        /// <summary>Elements a hash takes in (pre-order); keys that agree on these only share a bucket.</summary>
        private const int HashedElements = 4096;

        /// <summary>Element comparisons one equality test may take before it is refused.</summary>
        private const long MaxComparisons = 1_000_000;

        public new bool Equals(object? x, object? y)
        {
            long comparisons = 0;
            return Equals(x, y, 0, ref comparisons);
        }

        private static bool Equals(object? x, object? y, int depth, ref long comparisons)
        {
            if (++comparisons > MaxComparisons)
                throw new VimException($"dict keys are tuples too large to compare (over {MaxComparisons} elements)");
            if (ReferenceEquals(x, y))
                return true;
            if (x is null || y is null)
                return false;
            if (x is object?[] tx && y is object?[] ty)
            {
                if (tx.Length != ty.Length)
                    return false;
                if (depth >= CheckpointTree.MaxDepth)
                    throw new VimException($"dict key is a tuple nested more than {CheckpointTree.MaxDepth} levels deep");
                for (var i = 0; i < tx.Length; i++)
                    if (!Equals(tx[i], ty[i], depth + 1, ref comparisons))
                        return false;
                return true;
            }
            if (x is BigInteger || y is BigInteger)
                return AsBig(x) is { } bx && AsBig(y) is { } by && bx == by;
            return object.Equals(x, y);
        }

        private static BigInteger? AsBig(object v) => v switch
        {
            BigInteger b => b,
            long l => l,
            _ => null,
        };

        public int GetHashCode(object obj)
        {
            var budget = HashedElements;
            return HashOf(obj, 0, ref budget);
        }

        private static int HashOf(object? value, int depth, ref int budget)
        {
            switch (value)
            {
                case null:
                    return 0;
                case object?[] tuple:
                    var hash = new HashCode();
                    hash.Add(tuple.Length);
                    // Past the budget or the depth limit a tuple hashes by its length alone: equal tuples still hash alike.
                    if (depth < CheckpointTree.MaxDepth)
                        foreach (var item in tuple)
                        {
                            if (--budget < 0)
                                break;
                            hash.Add(HashOf(item, depth + 1, ref budget));
                        }
                    return hash.ToHashCode();
                case BigInteger big:
                    // Must agree with long keys of the same value.
                    return big >= long.MinValue && big <= long.MaxValue ? ((long)big).GetHashCode() : big.GetHashCode();
                default:
                    return value.GetHashCode();
            }
        }
    }
}
