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
    private DataLoader _loader;
    private readonly long _globalBatch;
    private IEnumerator<Batch> _batches;
    private readonly Func<DataLoader>? _switchedLoader;
    private bool _switched;

    /// <param name="globalBatch">Samples per iteration over all ranks (batch size × world size).</param>
    /// <param name="switchedLoader">Builds the loader of data.pipeline_switch's settings (<see cref="SwitchPipeline"/>): the same
    /// samples, seed, shard and batch, another pipeline or mixing transforms. Null: the source has no switch.</param>
    public LoaderBatchSource(DataLoader loader, DataPosition start, long globalBatch, Func<DataLoader>? switchedLoader = null)
    {
        if (start.IndexInEpoch % globalBatch != 0)
            throw new VimException($"cannot resume at sample {start.IndexInEpoch} of epoch {start.Epoch}: it is not a multiple of the global batch " +
                $"({globalBatch} = data.batch_size × processes); resume with a batch size and process count that divide it");
        _loader = loader;
        _globalBatch = globalBatch;
        _switchedLoader = switchedLoader;
        _batches = loader.Infinite(LoaderPositionOf(start)).GetEnumerator();
        Position = start;
    }

    public DataPosition Position { get; private set; }

    public int BatchSize => _loader.Options.BatchSize;

    public int BatchesPerEpoch => _loader.BatchesPerEpoch;

    /// <summary>
    /// The loader's batch of a global position. A position saved with a smaller global batch may leave less than this run's
    /// global batch in its epoch: that epoch has ended for this run, as it would have had it run with this batch throughout.
    /// </summary>
    private LoaderPosition LoaderPositionOf(DataPosition position)
    {
        long batchIndex = position.IndexInEpoch / _globalBatch;
        return batchIndex < _loader.BatchesPerEpoch ? new LoaderPosition(position.Epoch, (int)batchIndex) : new LoaderPosition(position.Epoch + 1, 0);
    }

    public Batch Next()
    {
        if (!_batches.MoveNext()) throw new InvalidOperationException("the training loader ended");
        var batch = _batches.Current;
        Position = new DataPosition(batch.Next.Epoch, batch.Next.BatchIndex * _globalBatch);
        return batch;
    }

    /// <summary>
    /// Continues from <see cref="Position"/> with the switched loader: the batches prefetched through the old pipeline are
    /// dropped (its workers stopped), and the shuffle and each sample's (seed, epoch, index) draws stay those of the stream,
    /// so the batches are those the switched loader alone would give from this position.
    /// </summary>
    public void SwitchPipeline()
    {
        if (_switched) return;
        if (_switchedLoader is null)
            throw new InvalidOperationException($"this training source has no switched pipeline ({Vim.Core.Config.PipelineSwitch.Key} is unset)");
        var switched = _switchedLoader();
        if (switched.BatchesPerEpoch != _loader.BatchesPerEpoch || switched.Options.BatchSize != _loader.Options.BatchSize)
            throw new InvalidOperationException($"the switched loader reads {switched.BatchesPerEpoch} batches of {switched.Options.BatchSize} an epoch, " +
                $"the loader it replaces {_loader.BatchesPerEpoch} of {_loader.Options.BatchSize}: a switch changes the pipeline, not the samples or batches");
        _batches.Dispose();
        _switched = true;
        _loader = switched;
        _batches = switched.Infinite(LoaderPositionOf(Position)).GetEnumerator();
    }

    public void Dispose() => _batches.Dispose();
}
