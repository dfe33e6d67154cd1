using Vim.Core;
using Vim.Core.Engine;

namespace Vim.Data.Loading;

/// <summary>
/// The trainer's view of an endless loader. Positions are global sample counts within the epoch
/// (all ranks together), so a checkpoint means the same thing for any world size; the loader counts
/// global batches of <paramref name="globalBatch"/> samples.
/// </summary>
public sealed class LoaderBatchSource : IBatchSource<Batch>
{
    private readonly DataLoader _loader;
    private readonly long _globalBatch;
    private readonly IEnumerator<Batch> _batches;

    /// <param name="globalBatch">Samples per iteration over all ranks (batch size × world size).</param>
    public LoaderBatchSource(DataLoader loader, DataPosition start, long globalBatch)
    {
        if (start.IndexInEpoch % globalBatch != 0)
            throw new VimException($"cannot resume at sample {start.IndexInEpoch} of epoch {start.Epoch}: it is not a multiple of the global batch " +
                $"({globalBatch} = data.batch_size × processes); resume with a batch size and process count that divide it");
        _loader = loader;
        _globalBatch = globalBatch;
        // A position saved with a smaller global batch may leave less than this run's global batch in its epoch: that
        // epoch has ended for this run, as it would have had it run with this batch throughout.
        long batchIndex = start.IndexInEpoch / globalBatch;
        var first = batchIndex < loader.BatchesPerEpoch ? new LoaderPosition(start.Epoch, (int)batchIndex) : new LoaderPosition(start.Epoch + 1, 0);
        _batches = loader.Infinite(first).GetEnumerator();
        Position = start;
    }

    public DataPosition Position { get; private set; }

    public int BatchSize => _loader.Options.BatchSize;

    public int BatchesPerEpoch => _loader.BatchesPerEpoch;

    public Batch Next()
    {
        if (!_batches.MoveNext()) throw new InvalidOperationException("the training loader ended");
        var batch = _batches.Current;
        Position = new DataPosition(batch.Next.Epoch, batch.Next.BatchIndex * _globalBatch);
        return batch;
    }

    public void Dispose() => _batches.Dispose();
}
