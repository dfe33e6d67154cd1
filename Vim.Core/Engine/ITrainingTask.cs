using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// What a task (detection, segmentation) supplies to the shared trainer: the model, its data and
/// its losses and metrics. The trainer owns everything else (optimisation, schedule, checkpoints,
/// logging, faults).
/// </summary>
public interface ITrainingTask<TBatch> : IDisposable
{
    /// <summary>The whole trainable model (backbone, neck, heads).</summary>
    nn.Module Model { get; }

    /// <summary>Backbone depth, for layer-wise learning-rate decay.</summary>
    int NumBackboneLayers { get; }

    /// <summary>The metric that selects the best checkpoint (e.g. mIoU, bbox_mAP); higher is better.</summary>
    string PrimaryMetric { get; }

    /// <summary>
    /// Every metric <see cref="Evaluate"/> returns, so a setting that watches one (a ReduceOnPlateauLR monitor) is refused
    /// before training rather than at the first evaluation; null where the task cannot tell in advance.
    /// </summary>
    IReadOnlyList<string>? MetricNames => null;

    /// <summary>
    /// The training stream of this process. <paramref name="start"/> is global (epoch, samples of the
    /// epoch's (seed, epoch) permutation consumed by all ranks together), and so is the source's
    /// <see cref="IBatchSource{TBatch}.Position"/>: each batch advances it by BatchSize × WorldSize, and
    /// this rank reads its block of that global batch (see <see cref="DataShard"/>).
    /// </summary>
    IBatchSource<TBatch> OpenTrainingData(int seed, DataPosition start, DataShard shard);

    /// <summary>
    /// Forward pass in training mode; returns each term to log (scalars). Those whose name contains "loss" are summed
    /// and minimised, as mmengine's parse_losses sums them; the others (a training accuracy such as mmseg's
    /// decode.acc_seg) are logged only, never part of the objective. Every call returns the same names. The batch
    /// arrives in host memory; the task moves it to the model's device (the trainer has put the model on
    /// runtime.device, see <see cref="DeviceSelection"/>).
    /// </summary>
    IReadOnlyDictionary<string, Tensor> Losses(TBatch batch);

    /// <summary>
    /// Evaluates the model as it is now on the validation split; called on every rank. A task may split
    /// the work by rank and merge through the communicator it was given; every rank must return the
    /// same metrics.
    /// </summary>
    IReadOnlyDictionary<string, double> Evaluate();
}
