namespace Vim.Data.Prediction;

/// <summary>
/// The tensor shape (height, width) each test view of an image takes in the model, view by view: images of equal shapes
/// can share a batch (<see cref="SameShapeBatches{TItem, TShape}"/>). Compared by value.
/// </summary>
public sealed class BatchShape : IEquatable<BatchShape>
{
    private readonly (long Height, long Width)[] _views;

    public BatchShape(IEnumerable<(long Height, long Width)> views) => _views = views.ToArray();

    public IReadOnlyList<(long Height, long Width)> Views => _views;

    public bool Equals(BatchShape? other) => other is not null && _views.AsSpan().SequenceEqual(other._views);

    public override bool Equals(object? obj) => Equals(obj as BatchShape);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var view in _views) hash.Add(view);
        return hash.ToHashCode();
    }

    public override string ToString() => string.Join(", ", _views.Select(v => $"{v.Width}x{v.Height}"));
}
