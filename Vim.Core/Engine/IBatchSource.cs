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

    /// <summary>
    /// From the next batch on, reads through data.pipeline_switch's settings (<see cref="Config.PipelineSwitch"/>) at the
    /// same position, with the same per-sample seeds; a second call changes nothing. A source without a switch refuses.
    /// </summary>
    void SwitchPipeline() => throw new InvalidOperationException($"{GetType().Name} has no switched pipeline ({Config.PipelineSwitch.Key})");
}
