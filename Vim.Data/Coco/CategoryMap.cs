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

    /// <param name="source">The file the categories come from, named by the error on a repeated id.</param>
    public CategoryMap(IEnumerable<CocoCategory> categories, string? source = null)
    {
        var sorted = categories.OrderBy(c => c.Id).ToArray();
        _categoryIds = new long[sorted.Length];
        _names = new string[sorted.Length];
        _indexById = new Dictionary<long, int>(sorted.Length);
        for (int i = 0; i < sorted.Length; i++)
        {
            if (!_indexById.TryAdd(sorted[i].Id, i))
                throw new VimException($"{(source is null ? "" : $"{source}: ")}category id {sorted[i].Id} appears more than once.");
            _categoryIds[i] = sorted[i].Id;
            _names[i] = sorted[i].Name;
        }
    }

    public static CategoryMap FromDataset(CocoDataset dataset) => new(dataset.Categories);

    /// <summary>
    /// The classes of an annotation file's <paramref name="categories"/>: at least one, each id once; refused naming
    /// <paramref name="source"/> otherwise, since a dataset without categories can label nothing.
    /// </summary>
    public static CategoryMap FromCategories(IReadOnlyList<CocoCategory> categories, string source)
    {
        if (categories.Count == 0)
            throw new VimException($"{source}: \"categories\" is missing, empty or not an array; expected an array of at least one category {{\"id\": …, \"name\": …}}.");
        return new CategoryMap(categories, source);
    }

    /// <summary>
    /// The classes of an instances json (<see cref="FromCategories"/>) read from its "categories" alone
    /// (<see cref="CocoDataset.LoadCategories(string)"/>): what evaluation-only uses need of a training annotation file.
    /// </summary>
    public static CategoryMap Load(string annotationFile) => FromCategories(CocoDataset.LoadCategories(annotationFile), annotationFile);

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
