using Vim.Data.Datasets;

namespace Vim.Data.Transforms.Corruptions;

/// <summary>
/// A split's samples with each decoded image corrupted (<see cref="ImageCorruptions.Apply"/>) before any transform, where
/// mmdet's robustness test puts its Corrupt step (right after LoadImageFromFile, before the test resize). The seed of
/// sample i is i, its index in <paramref name="source"/> (wrap the whole split, before a rank's share is taken), so a
/// benchmark cell gives the same images in any process, on any worker thread, at any severity's random draws.
/// </summary>
public sealed class CorruptedImages(ISampleSource source, string corruption, int severity) : ISampleSource
{
    public string Corruption { get; } = corruption;

    public int Severity { get; } = severity;

    public int Count => source.Count;

    public DataSample Load(int index)
    {
        var sample = source.Load(index);
        sample.Image = ImageCorruptions.Apply(Corruption, new CorruptionImage(sample.Image, sample.Height, sample.Width), Severity, seed: index);
        return sample;
    }
}
