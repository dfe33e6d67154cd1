namespace Vim.Data.Datasets;

/// <summary>A random-access dataset: <see cref="Load"/> must be safe to call from several threads at once.</summary>
public interface ISampleSource
{
    int Count { get; }

    /// <summary>Reads sample <paramref name="index"/> (0..Count−1) from disk, untransformed.</summary>
    DataSample Load(int index);
}
