namespace Vim.Data.Datasets;

/// <summary>
/// A source visited <see cref="Times"/> times in a row (MMEngine's RepeatDataset): sample i is the source's sample
/// i mod Count. Each copy has indices of its own, so a loader shuffles all copies together and seeds each copy's
/// augmentation differently.
/// </summary>
public sealed class RepeatedSource : ISampleSource
{
    public RepeatedSource(ISampleSource source, int times)
    {
        if (times < 1) throw new ArgumentOutOfRangeException(nameof(times), times, "a source is repeated at least once");
        long total = (long)source.Count * times;
        if (total > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(times), times, $"{source.Count} samples × {times} = {total}, beyond {int.MaxValue} (int indices)");
        Source = source;
        Times = times;
        Count = (int)total;
    }

    public ISampleSource Source { get; }

    public int Times { get; }

    public int Count { get; }

    /// <summary>The index in <see cref="Source"/> of this source's sample <paramref name="index"/>.</summary>
    public int SourceIndex(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the repeated source has {Count} samples");
        return index % Source.Count;
    }

    public DataSample Load(int index) => Source.Load(SourceIndex(index));
}
