using Vim.Core;

namespace Vim.Data.Coco;

/// <summary>
/// Maps a model's contiguous class indices 0..K−1 to a dataset's category ids (COCO's run 1..90 with
/// gaps). Classes are ordered by ascending category id, the mmdetection/detectron2 convention.
/// </summary>
public sealed class CategoryMap
{
    private readonly long[] _categoryIds;
    private readonly string[] _names;
    private readonly Dictionary<long, int> _indexById;

    public CategoryMap(IEnumerable<CocoCategory> categories)
    {
        var sorted = categories.OrderBy(c => c.Id).ToArray();
        _categoryIds = new long[sorted.Length];
        _names = new string[sorted.Length];
        _indexById = new Dictionary<long, int>(sorted.Length);
        for (int i = 0; i < sorted.Length; i++)
        {
            if (!_indexById.TryAdd(sorted[i].Id, i))
                throw new VimException($"category id {sorted[i].Id} appears more than once.");
            _categoryIds[i] = sorted[i].Id;
            _names[i] = sorted[i].Name;
        }
    }

    public static CategoryMap FromDataset(CocoDataset dataset) => new(dataset.Categories);

    public int Count => _categoryIds.Length;
    public IReadOnlyList<long> CategoryIds => _categoryIds;
    public IReadOnlyList<string> Names => _names;

    public long ToCategoryId(int classIndex)
    {
        if ((uint)classIndex >= (uint)_categoryIds.Length)
            throw new ArgumentOutOfRangeException(nameof(classIndex), $"class index {classIndex} is outside 0..{_categoryIds.Length - 1}.");
        return _categoryIds[classIndex];
    }

    public int ToClassIndex(long categoryId) =>
        _indexById.TryGetValue(categoryId, out int i) ? i : throw new VimException($"category id {categoryId} is not in the dataset's categories.");

    public bool TryGetClassIndex(long categoryId, out int classIndex) => _indexById.TryGetValue(categoryId, out classIndex);

    /// <summary>Where <paramref name="other"/> maps class indices to other categories: null when both list the same ids and names.</summary>
    public string? FirstDifference(CategoryMap other)
    {
        for (int i = 0; i < Math.Max(Count, other.Count); i++)
        {
            if (i < Count && i < other.Count && _categoryIds[i] == other._categoryIds[i] && _names[i] == other._names[i]) continue;
            string Describe(CategoryMap map) => i < map.Count ? $"category {map._categoryIds[i]} '{map._names[i]}'" : "nothing";
            return $"class {i} is {Describe(this)} in one and {Describe(other)} in the other ({Count} against {other.Count} categories)";
        }
        return null;
    }
}
