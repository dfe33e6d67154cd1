using System.Globalization;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;

namespace Vim.Data.Loading;

/// <summary>
/// The data settings a loader needs, checked against the config's keys before a loader is built (the loader itself
/// only knows its own option names).
/// </summary>
public static class TrainingLoaderChecks
{
    /// <summary>data.batch_size and data.num_workers are usable at all (also for evaluation-only uses of a task).</summary>
    public static void CheckSettings(DataConfig data)
    {
        if (data.BatchSize < 1)
            throw new VimException($"data.batch_size must be at least 1 (images per process and iteration), got {data.BatchSize}");
        if (data.NumWorkers < 0)
            throw new VimException($"data.num_workers must be at least 0 (0 decodes images on the training thread), got {data.NumWorkers}");
        RequireSizePair(data.CropSize, "data.crop_size", "[height, width] of the training crop (detection: its square side twice)");
        RequireSizePair(data.Scale, "data.scale", "[long edge, short edge] of the resize");
        TrainingSplits.CheckSettings(data);
    }

    private static void RequireSizePair(List<int> sizes, string key, string meaning)
    {
        if (sizes.Count != 2 || sizes[0] < 1 || sizes[1] < 1)
            throw new VimException($"{key} must be two positive sizes, {meaning}; got [{string.Join(", ", sizes)}]");
    }

    /// <summary>
    /// The training samples (the splits' images, class-balanced into <paramref name="classBalancedImages"/> samples where
    /// data.class_balanced_thr is set, repeated data.train_repeat times: what the loader draws from) hold at least one
    /// global batch (batch × processes) per epoch: epochs end when the next global batch no longer fits
    /// (<see cref="DataLoader.BatchesPerEpoch"/>), so each process has its full batch.
    /// </summary>
    public static void CheckTrainingSplit(DataConfig data, int trainImages, int worldSize, int? classBalancedImages = null)
    {
        CheckSettings(data);
        long samples = (long)(classBalancedImages ?? trainImages) * data.TrainRepeat;
        long perProcess = samples / worldSize;
        if (perProcess < data.BatchSize)
        {
            var balanced = classBalancedImages is { } balancedCount
                ? $"class-balanced by data.class_balanced_thr {data.ClassBalancedThr?.ToString(CultureInfo.InvariantCulture)} to {balancedCount}"
                : null;
            var counted = (balanced, data.TrainRepeat > 1) switch
            {
                (null, false) => "",
                (null, true) => $" (× data.train_repeat {data.TrainRepeat} = {samples} samples)",
                (_, false) => $" ({balanced} samples)",
                (_, true) => $" ({balanced}, × data.train_repeat {data.TrainRepeat} = {samples} samples)",
            };
            throw new VimException(
                $"data.batch_size is {data.BatchSize}{(worldSize > 1 ? $" per process with {worldSize} processes" : "")}, but the training " +
                $"split{(data.TrainSplits.Count > 1 ? "s" : "")} {TrainingSplits.Describe(data)} under data.root {data.Root} " +
                $"{(data.TrainSplits.Count > 1 ? "have" : "has")} {trainImages} image(s){counted}{(worldSize > 1 ? $" ({perProcess} per process)" : "")}: " +
                "not one full batch per epoch; lower data.batch_size or add training images");
        }
    }
}
