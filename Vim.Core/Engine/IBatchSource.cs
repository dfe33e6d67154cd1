namespace Vim.Core.Engine;

/// <summary>An endless stream of training batches whose randomness depends only on (seed, position).</summary>
public interface IBatchSource<out TBatch> : IDisposable
{
    /// <summary>The position of the next batch.</summary>
    DataPosition Position { get; }

    /// <summary>Images (or samples) in each batch, for throughput.</summary>
    int BatchSize { get; }

    /// <summary>
    /// Batches (iterations) in one epoch of the stream: the same on every rank, each reading its share of the global batch
    /// (drop_last), so schedule.max_epochs means the same iterations on every process (<see cref="EpochSchedule"/>).
    /// </summary>
    int BatchesPerEpoch { get; }

    TBatch Next();
}
