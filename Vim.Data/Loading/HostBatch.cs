namespace Vim.Data.Loading;

/// <summary>
/// A collated batch as plain arrays, built on a worker thread. Tensors are made from it on the consumer
/// thread, because dispose scopes are per thread and a tensor created in a worker would escape them.
/// </summary>
internal sealed class HostBatch
{
    public required LoaderPosition Position { get; init; }
    public required int Height { get; init; }
    public required int Width { get; init; }
    public required float[] Images { get; init; }
    public long[]? Labels { get; init; }
    public List<HostTarget>? Targets { get; init; }
    public required List<SampleMeta> Metas { get; init; }
}
