namespace Vim.Core.Engine;

/// <summary>An endless stream of training batches whose randomness depends only on (seed, position).</summary>
public interface IBatchSource<out TBatch> : IDisposable
{
    /// <summary>The position of the next batch.</summary>
    DataPosition Position { get; }

    /// <summary>Images (or samples) in each batch, for throughput.</summary>
    int BatchSize { get; }

    TBatch Next();
}
