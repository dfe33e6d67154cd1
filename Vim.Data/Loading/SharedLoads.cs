using System.Collections.Concurrent;
using Vim.Data.Datasets;

namespace Vim.Data.Loading;

/// <summary>
/// A dataset read by <see cref="Readers"/> loaders side by side, each transforming every sample its own way (the test
/// views of multi-scale test-time augmentation, <see cref="LockstepBatches.Views"/>): sample i is loaded (decoded) from
/// the inner source once, on the first reader's request, and each reader gets its own <see cref="DataSample.Copy"/>,
/// since transforms change a sample in place. The loaded sample is dropped once every reader has taken its copy, so
/// lockstep readers keep only the few samples between the slowest and the fastest in memory.
/// </summary>
internal sealed class SharedLoads : ISampleSource
{
    private readonly ISampleSource _inner;
    private readonly ConcurrentDictionary<int, Entry> _loaded = new();

    public SharedLoads(ISampleSource inner, int readers)
    {
        if (readers < 1) throw new ArgumentOutOfRangeException(nameof(readers), $"at least one reader, got {readers}.");
        _inner = inner;
        Readers = readers;
    }

    public int Readers { get; }

    public int Count => _inner.Count;

    public DataSample Load(int index)
    {
        var entry = _loaded.GetOrAdd(index, i => new Entry(new Lazy<DataSample>(() => _inner.Load(i)), Readers));
        // A load that fails fails for every reader alike (Lazy keeps the exception), as separate loads would.
        var copy = entry.Sample.Value.Copy();
        if (Interlocked.Decrement(ref entry.Left) == 0) _loaded.TryRemove(index, out _);
        return copy;
    }

    private sealed class Entry(Lazy<DataSample> sample, int readers)
    {
        public Lazy<DataSample> Sample { get; } = sample;
        public int Left = readers;
    }
}
