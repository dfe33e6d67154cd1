namespace Vim.Data.Datasets;

/// <summary>
/// Every <c>stride</c>-th sample of a source, starting at <c>offset</c> (samples i with i mod stride =
/// offset, in order): one rank's share of a distributed evaluation. Unlike the training sampler it
/// neither shuffles nor pads, so the ranks' shares are disjoint and together are the whole set once.
/// Samples keep their own image ids, so predictions map back to the full dataset.
/// </summary>
public sealed class StridedSubset : ISampleSource
{
    private readonly ISampleSource _source;

    public StridedSubset(ISampleSource source, int offset, int stride)
    {
        if (stride < 1 || offset < 0 || offset >= stride)
            throw new ArgumentException($"strided subset: offset {offset} must be in 0..stride−1 (stride {stride})");
        _source = source;
        Offset = offset;
        Stride = stride;
        Count = source.Count <= offset ? 0 : (source.Count - offset + stride - 1) / stride;
    }

    public int Offset { get; }

    public int Stride { get; }

    public int Count { get; }

    /// <summary>The index in the source of this subset's sample <paramref name="index"/>.</summary>
    public int SourceIndex(int index) => Offset + index * Stride;

    public DataSample Load(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the subset has {Count} samples");
        return _source.Load(SourceIndex(index));
    }
}
