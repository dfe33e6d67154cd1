namespace Vim.Core.Checkpoints;

/// <summary>A key present on both sides whose shapes differ.</summary>
public sealed record ShapeMismatch(string Key, long[] ModuleShape, long[] CheckpointShape)
{
    public override string ToString() =>
        $"{Key}: module [{string.Join(", ", ModuleShape)}], checkpoint [{string.Join(", ", CheckpointShape)}]";
}
