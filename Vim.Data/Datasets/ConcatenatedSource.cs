namespace Vim.Data.Datasets;

/// <summary>
/// Several sources read as one (MMEngine's ConcatDataset): the first part's samples, then the second's, and so on, so
/// sample i is part p's sample i − (samples of the parts before p). An index says nothing about a sample's image id:
/// parts may reuse ids (two COCO files numbered from 1), and samples keep their own. The parts stay typed, for what
/// only a dataset knows (its label maps, its files on disk).
/// </summary>
public sealed class ConcatenatedSource<TPart> : ISampleSource where TPart : ISampleSource
{
    /// <summary>Part p's samples are the indices [_ends[p] − Parts[p].Count, _ends[p]).</summary>
    private readonly int[] _ends;

    public ConcatenatedSource(IReadOnlyList<TPart> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("a concatenation needs at least one part", nameof(parts));
        Parts = parts;
        _ends = new int[parts.Count];
        long total = 0;
        for (int p = 0; p < parts.Count; p++)
        {
            total += parts[p].Count;
            if (total > int.MaxValue)
                throw new ArgumentException($"the parts hold {total} samples or more together, beyond {int.MaxValue} (int indices)", nameof(parts));
            _ends[p] = (int)total;
        }
        Count = (int)total;
    }

    public IReadOnlyList<TPart> Parts { get; }

    public int Count { get; }

    /// <summary>The part holding sample <paramref name="index"/> and the sample's index within it.</summary>
    public (int Part, int IndexInPart) Locate(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the concatenation has {Count} samples");
        // The first part ending after the index; empty parts end where their predecessor does and are passed over.
        int low = 0, high = _ends.Length - 1;
        while (low < high)
        {
            int middle = (low + high) / 2;
            if (_ends[middle] > index) high = middle;
            else low = middle + 1;
        }
        return (low, index - (_ends[low] - Parts[low].Count));
    }

    public DataSample Load(int index)
    {
        var (part, indexInPart) = Locate(index);
        return Parts[part].Load(indexInPart);
    }
}
