namespace Vim.Data.Loading;

/// <summary>Batching, ordering and parallelism of a <see cref="DataLoader"/>.</summary>
public sealed record LoaderOptions
{
    public int BatchSize { get; init; } = 2;
    public BatchKind Kind { get; init; } = BatchKind.Segmentation;

    /// <summary>0 runs decode+augment on the consumer thread; n &gt; 0 uses n worker threads.</summary>
    public int NumWorkers { get; init; } = 2;

    /// <summary>Batches prepared ahead of the consumer (bounds memory).</summary>
    public int Prefetch { get; init; } = 4;
    public bool Shuffle { get; init; } = true;
    public bool DropLast { get; init; } = true;
    public int Seed { get; init; }
    public int Rank { get; init; }
    public int WorldSize { get; init; } = 1;

    /// <summary>Batch tensors are padded to multiples of this (1 = to the largest image).</summary>
    public int SizeDivisor { get; init; } = 1;

    /// <summary>Ignore value used when padding label maps in a batch.</summary>
    public int SegPadValue { get; init; } = 255;
}
