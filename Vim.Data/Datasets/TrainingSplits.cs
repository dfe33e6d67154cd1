using System.Globalization;
using Vim.Core;
using Vim.Core.Config;

namespace Vim.Data.Datasets;

/// <summary>
/// What training reads of a config's data: every split of data.train_split opened in the task's layout and concatenated
/// (<see cref="ConcatenatedSource{TPart}"/>), for detection class-balanced by data.class_balanced_thr
/// (<see cref="ClassBalancedSource"/>), the whole repeated data.train_repeat times (<see cref="RepeatedSource"/>).
/// The tasks' data classes build their splits through it, so both read lists, report missing splits and count samples alike.
/// </summary>
public static class TrainingSplits
{
    /// <summary>data.train_split names one or more distinct splits, data.train_repeat is at least 1 and data.class_balanced_thr, if set, within (0, 1].</summary>
    public static void CheckSettings(DataConfig data)
    {
        var splits = data.TrainSplits;
        if (splits.Count == 0)
            throw new VimException("data.train_split is an empty list; expected a split name (train2017) or a list of them ([train2017, val35k])");
        for (int i = 0; i < splits.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(splits[i]))
                throw new VimException($"data.train_split[{i}] is empty; expected a split name, a folder under data.root {data.Root}");
            if (splits.IndexOf(splits[i]) < i)
                throw new VimException($"data.train_split lists '{splits[i]}' twice (items {splits.IndexOf(splits[i])} and {i}); " +
                    "to visit a split more often per epoch set data.train_repeat (it repeats every listed split)");
        }
        if (data.TrainRepeat < 1)
            throw new VimException($"data.train_repeat must be at least 1 (how many times each epoch visits the training samples), got {data.TrainRepeat}");
        if (data.ClassBalancedThr is { } threshold && !(threshold > 0 && threshold <= 1))
            throw new VimException($"data.class_balanced_thr must be within (0, 1], the fraction of training images below which a class's images are " +
                $"repeated (mmdet's oversample_thr, e.g. 0.001 for LVIS), got {threshold.ToString(CultureInfo.InvariantCulture)}; null leaves class balancing off");
    }

    /// <summary>
    /// The splits of data.train_split in the listed order, each opened by <paramref name="open"/> and concatenated; see
    /// <see cref="ReadEach"/> for the refusals.
    /// </summary>
    public static ConcatenatedSource<TPart> Open<TPart>(DataConfig data, string layout, Func<string, IEnumerable<string>> requiredPaths, Func<string, TPart> open)
        where TPart : ISampleSource => new(ReadEach(data, layout, requiredPaths, open));

    /// <summary>
    /// What <paramref name="read"/> makes of each split of data.train_split, in the listed order (a dataset, or less: the
    /// categories evaluation needs). A split whose <paramref name="requiredPaths"/> are not all on disk is refused first,
    /// naming the split and the path, with <paramref name="layout"/> (what a split consists of, "&lt;split&gt;" standing
    /// for its name) as the expectation.
    /// </summary>
    public static IReadOnlyList<T> ReadEach<T>(DataConfig data, string layout, Func<string, IEnumerable<string>> requiredPaths, Func<string, T> read)
    {
        CheckSettings(data);
        var parts = new List<T>(data.TrainSplits.Count);
        foreach (var split in data.TrainSplits)
        {
            if (requiredPaths(split).FirstOrDefault(path => !File.Exists(path) && !Directory.Exists(path)) is { } missing)
                throw new VimException($"data.train_split: split '{split}' not found: {missing} does not exist; " +
                    $"each training split needs {layout} under data.root {data.Root}");
            parts.Add(read(split));
        }
        return parts;
    }

    /// <summary>
    /// <paramref name="splits"/> class-balanced by data.class_balanced_thr over all of them together (mmdet's
    /// ClassBalancedDataset around the ConcatDataset: a class's frequency counts every split's images), or the splits
    /// themselves when it is unset. Before <see cref="Repeated"/>, though the order makes no difference: a repeat leaves
    /// every frequency as it is, so each image's copies are the same in every pass.
    /// </summary>
    /// <param name="classesOf">The classes present in sample i of <paramref name="splits"/>.</param>
    public static ISampleSource ClassBalanced(ISampleSource splits, Func<int, IEnumerable<int>> classesOf, DataConfig data)
    {
        CheckSettings(data);
        if (data.ClassBalancedThr is not { } threshold) return splits;
        try
        {
            return new ClassBalancedSource(splits, classesOf, threshold);
        }
        catch (OverflowException e)
        {
            throw new VimException($"data.class_balanced_thr {threshold.ToString(CultureInfo.InvariantCulture)}: {e.Message}; lower data.class_balanced_thr", e);
        }
    }

    /// <summary>What the training loader draws from: <paramref name="splits"/> (class-balanced or not) repeated data.train_repeat times.</summary>
    public static RepeatedSource Repeated(ISampleSource splits, DataConfig data)
    {
        CheckSettings(data);
        if ((long)splits.Count * data.TrainRepeat > int.MaxValue)
            throw new VimException($"data.train_repeat {data.TrainRepeat} × {splits.Count} training images is beyond {int.MaxValue} samples per epoch; lower data.train_repeat");
        return new RepeatedSource(splits, data.TrainRepeat);
    }

    /// <summary>The training splits for messages: 'train2017', or 'train2017' + 'val35k'.</summary>
    public static string Describe(DataConfig data) => string.Join(" + ", data.TrainSplits.Select(split => $"'{split}'"));
}
