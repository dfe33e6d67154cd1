using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// A step that combines two samples (MMDetection's transforms that take `mix_results`, such as CopyPaste): it changes
/// <paramref name="destination"/> in place, may change <paramref name="source"/> (a sample of its own, drawn and augmented
/// for this mix), and draws only from <paramref name="random"/>. The loader supplies the second sample
/// (<see cref="Loading.DataLoader"/> with a mixer).
/// </summary>
public interface ISampleMixer
{
    void Mix(DataSample destination, DataSample source, Random random);
}
