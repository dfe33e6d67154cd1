using static TorchSharp.torch;

namespace Vim.Data.Loading;

/// <summary>
/// A batch of padded, normalized images (N×3×H×W float32) with detection targets or segmentation labels
/// (N×H×W int64, padding = ignore). The batch owns its tensors: dispose it (or let the step's dispose
/// scope take them) once the step is done.
/// </summary>
public sealed class Batch : IDisposable
{
    internal Batch(Tensor images, Tensor? labels, IReadOnlyList<DetectionTarget>? targets, IReadOnlyList<SampleMeta> metas, LoaderPosition position, LoaderPosition next)
    {
        Images = images;
        Labels = labels;
        Targets = targets;
        Metas = metas;
        Position = position;
        Next = next;
    }

    public Tensor Images { get; }

    /// <summary>N×H×W int64 label maps (segmentation), else null.</summary>
    public Tensor? Labels { get; }

    /// <summary>Per-image instances (detection), else null.</summary>
    public IReadOnlyList<DetectionTarget>? Targets { get; }

    public IReadOnlyList<SampleMeta> Metas { get; }

    /// <summary>The stream position of this batch.</summary>
    public LoaderPosition Position { get; }

    /// <summary>The position to checkpoint so a resumed run continues with the following batch.</summary>
    public LoaderPosition Next { get; }

    public int Count => Metas.Count;

    public void Dispose()
    {
        Images.Dispose();
        Labels?.Dispose();
        if (Targets is null) return;
        foreach (var t in Targets)
        {
            t.Boxes.Dispose();
            t.Labels.Dispose();
            t.IsCrowd.Dispose();
            t.Masks?.Dispose();
        }
    }
}
