using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>
/// An epoch-counted schedule (schedule.max_epochs) in iterations as `vim train` would run it on K processes, for the
/// commands that show a schedule without training (`vim config lr`, `vim config show --resolved`): the epoch is counted
/// by the task's own training loader (<c>TrainingLoader(...).BatchesPerEpoch</c>, the one `vim train` reads) and turned
/// into iterations by <see cref="EpochSchedule.Resolve"/>, the trainer's own resolution. Needs the training data.
/// </summary>
public static class TrainingEpochs
{
    public static TrainingLength Resolve(ExperimentConfig config, int processes)
    {
        if (config.Schedule.MaxEpochs is null) return new TrainingLength(config, null);
        EpochSchedule.CheckSettings(config);
        return EpochSchedule.Resolve(config, IterationsPerEpoch(config, processes));
    }

    /// <summary>
    /// The task's data and test settings checked as training checks them before it reads a file (data.mosaic, data.mixup,
    /// data.filter_cfg, the pipelines, …), each refusal naming the file and line of the key at fault.
    /// </summary>
    public static void CheckDataSettings(ExperimentConfig config)
    {
        switch (config.Task)
        {
            case TaskKind.Detection: DetectionData.CheckSettings(config); break;
            case TaskKind.Segmentation: SegmentationData.CheckSettings(config); break;
        }
    }

    /// <summary>The training loader's iterations per epoch on each of <paramref name="processes"/> processes (the same on every rank).</summary>
    public static int IterationsPerEpoch(ExperimentConfig config, int processes)
    {
        var shard = new DataShard(0, processes);
        // A wrong setting is the config's error, not unreadable data: checked before the wrapper below would blame the data.
        CheckDataSettings(config);
        try
        {
            return config.Task switch
            {
                TaskKind.Detection => new DetectionData(config).TrainingLoader(config.Runtime.Seed, shard).BatchesPerEpoch,
                TaskKind.Segmentation => new SegmentationData(config).TrainingLoader(config.Runtime.Seed, shard).BatchesPerEpoch,
                _ => throw new VimException($"task: {config.Task} is not supported"),
            };
        }
        catch (Exception e) when (e is VimException or IOException)
        {
            throw new VimException($"schedule.max_epochs counts epochs of the training data, so the data under data.root ({config.Data.Root}) must be " +
                $"readable to count an epoch's iterations (or count iterations with schedule.max_iters): {e.Message}", e);
        }
    }
}
