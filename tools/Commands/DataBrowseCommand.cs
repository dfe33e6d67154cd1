using System.CommandLine;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim data browse CONFIG [--split train|val] [--count 16] [--epoch 0] [--out DIR] [--set k=v ...]`: the samples a
/// config's data pipeline feeds the model, drawn with their ground truth, one PNG each (MMDetection's and
/// MMSegmentation's tools/analysis_tools/browse_dataset.py). The datasets and loaders are the ones training and
/// evaluation build (<see cref="DetectionData"/>, <see cref="SegmentationData"/>), so the random draws are training's.
/// </summary>
public static class DataBrowseCommand
{
    public const int DefaultCount = 16;

    private const string Help =
        "Draw what a config's data pipeline feeds the model, one PNG per sample (SOURCE-STEM_INDEX.png): the 8-bit image as the pipeline's " +
        "Normalize step receives it, with its ground truth (padding that a Pad step adds after Normalize shows in its pad value, black, where the " +
        "model sees normalised 0, the mean colour; the padding of batches to a common size is not drawn). Detection: each instance's " +
        "box, its mask filled at 50% and outlined in the class colour, and a \"class\" tag; crowd regions (ignored by the losses) in grey with a " +
        "dashed box and a \"class (crowd)\" tag. Segmentation: the label map's palette colours (those of `vim test` overlays) blended 50/50 " +
        "with the image; ignored pixels (model.seg_head.ignore_index, padding included) are left undrawn, showing the image. " +
        "--split train: the training pipeline (data.train_pipeline, else the task's official recipe), samples in the order one process's training loader reads them, each augmented with the " +
        "loader's seed for it (runtime.seed, epoch, image), continuing into the next epochs when --count asks for more; a data.train_split " +
        "list is drawn from as training reads it, its splits concatenated and shuffled together, class-balanced by data.class_balanced_thr " +
        "(detection) and repeated data.train_repeat times an epoch; with data.mosaic (detection) each sample shows the 2 × img_scale mosaic of it and three others, with " +
        "data.mixup the blend with another sample and both samples' objects, with data.copy_paste the objects of a second " +
        "training sample pasted over it, cut destination objects with their recomputed boxes (in that order when several are set), as training receives it; " +
        "with data.pipeline_switch the samples of one process's batches from the switch on (after its `at` epochs, or iterations) go through the " +
        "switched pipeline and mixing transforms, so an --epoch at or past the switch's epoch shows what the end of the run trains on. " +
        "--split val: the test pipeline (data.test_pipeline, else the recipe) at the first test scale (model.seg_test.scales or " +
        "model.det_test.scales), in dataset order.";

    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML)." };
        var split = new Option<string>("--split")
        {
            Description = "train: data.train_split (every split it lists, class-balanced by data.class_balanced_thr, × data.train_repeat) through the training pipeline; val: data.val_split through the test pipeline.",
            DefaultValueFactory = _ => "train",
        };
        var count = new Option<int>("--count") { Description = "How many samples to draw (val: at most the split's images).", DefaultValueFactory = _ => DefaultCount };
        var epoch = new Option<int>("--epoch") { Description = "--split train: the epoch whose shuffle and augmentation draws to show first.", DefaultValueFactory = _ => 0 };
        var outDir = new Option<string?>("--out") { Description = "Output folder (default: <work dir>/browse, the work dir as `vim train` resolves it: runtime.work_dir, else work_dirs/<config name>)." };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("browse", Help);
        command.Arguments.Add(configArg);
        foreach (var option in new Option[] { split, count, epoch, outDir, set }) command.Options.Add(option);
        command.SetAction(parse =>
        {
            bool training = ParseSplit(parse.GetValue(split)!);
            int samples = parse.GetValue(count), firstEpoch = parse.GetValue(epoch);
            CheckCounts(training, samples, firstEpoch);
            var configPath = parse.GetValue(configArg)!;
            var (config, _) = ExperimentConfig.Load(configPath, parse.GetValue(set) ?? []);
            var dir = parse.GetValue(outDir) ?? Path.Combine(TrainCommand.WorkDir(configPath, config), "browse");
            OutputFolder.Check(dir, "--out");
            var written = Browse(config, training, samples, firstEpoch, dir, Console.Out);
            var splits = training ? TrainingSplits.Describe(config.Data) : $"'{config.Data.ValSplit}'";
            var pipeline = training
                ? $"training pipeline from epoch {firstEpoch}, runtime.seed {config.Runtime.Seed}" +
                  $"{(config.Data.ClassBalancedThr is { } threshold ? $", data.class_balanced_thr {threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : "")}" +
                  $"{(config.Data.TrainRepeat > 1 ? $", data.train_repeat {config.Data.TrainRepeat}" : "")}" +
                  $"{(config.Data.Mosaic is not null ? ", data.mosaic" : "")}" +
                  $"{(config.Data.MixUp is not null ? ", data.mixup" : "")}" +
                  $"{(config.Data.CopyPaste is not null ? ", data.copy_paste" : "")}"
                  + $"{(config.Data.PipelineSwitch is not null ? ", data.pipeline_switch" : "")}"
                : "test pipeline";
            Console.WriteLine($"{written.Count} drawings of {(training && config.Data.TrainSplits.Count > 1 ? "splits" : "split")} {splits} ({pipeline}) in {Path.GetFullPath(dir)}");
            return 0;
        });
        return command;
    }

    /// <summary>--split: true for train, false for val.</summary>
    public static bool ParseSplit(string split) => split switch
    {
        "train" => true,
        "val" => false,
        _ => throw new VimException($"--split: expected train (data.train_split through the training pipeline) or val (data.val_split through the test pipeline), got \"{split}\""),
    };

    private static void CheckCounts(bool training, int count, int epoch)
    {
        if (count < 1) throw new VimException($"--count: expected a positive number of samples to draw, got {count}");
        if (epoch < 0) throw new VimException($"--epoch: expected an epoch number of 0 or more, got {epoch}");
        if (!training && epoch != 0)
            throw new VimException($"--epoch: applies to --split train only (the test pipeline draws nothing at random), got --epoch {epoch} with --split val");
    }

    /// <summary>
    /// Draws the first <paramref name="count"/> samples of the training stream from <paramref name="epoch"/> on
    /// (<paramref name="training"/>) or of the validation split into <paramref name="dir"/>, printing progress to
    /// <paramref name="progress"/>; returns the files written, in order.
    /// </summary>
    public static IReadOnlyList<string> Browse(ExperimentConfig config, bool training, int count, int epoch, string dir, TextWriter progress)
    {
        CheckCounts(training, count, epoch);
        DataLoader loader;
        (PipelineSwitch Change, DataLoader Loader)? switched = null;
        Func<DataSample, Mat> draw;
        int seed = config.Runtime.Seed;
        if (config.Task == TaskKind.Detection)
        {
            var data = new DetectionData(config, validationMasks: !training);
            loader = training ? data.TrainingLoader(seed, DataShard.Whole) : data.EvaluationLoader(data.ValSet, data.TestPipelines()[0]);
            if (training && data.PipelineSwitch is { } change) switched = (change, data.SwitchedTrainingLoader(seed, DataShard.Whole));
            draw = sample => DrawDetectionSample(sample, data.Categories.Names);
        }
        else
        {
            var data = new SegmentationData(config);
            loader = training ? data.TrainingLoader(seed, DataShard.Whole) : data.EvaluationLoader(data.ValSet, data.TestPipelines()[0]);
            if (training && data.PipelineSwitch is { } change) switched = (change, data.SwitchedTrainingLoader(seed, DataShard.Whole));
            draw = sample => DrawSegmentationSample(sample, data.IgnoreIndex);
        }
        if (!training && count > loader.Sampler.SamplesPerRank)
        {
            progress.WriteLine($"note: split '{config.Data.ValSplit}' has {loader.Sampler.SamplesPerRank} images; drawing {loader.Sampler.SamplesPerRank}, not --count {count}");
            count = loader.Sampler.SamplesPerRank;
        }
        var samples = switched is { } s ? SwitchingSamples(s.Change, loader, s.Loader, epoch, progress) : loader.Samples(epoch, endless: training);
        return WriteSamples(samples, count, dir, draw, progress);
    }

    /// <summary>
    /// The training stream of one process from <paramref name="epoch"/> on with data.pipeline_switch: the samples of the
    /// batches before the switch's iteration through the loader, those from it on through the switched loader, as training
    /// reads them.
    /// </summary>
    private static IEnumerable<DataSample> SwitchingSamples(PipelineSwitch change, DataLoader loader, DataLoader switched, int epoch, TextWriter progress)
    {
        int perEpoch = loader.BatchesPerEpoch;
        int at = change.Iteration(perEpoch);
        var switchPosition = new LoaderPosition(at / perEpoch, at % perEpoch);
        var start = new LoaderPosition(epoch, 0);
        bool switchedAlready = (long)epoch * perEpoch >= at;
        progress.WriteLine($"{PipelineSwitch.Key} {change.Place(at)} ({change.Changes()}): on one process of {perEpoch} iterations an epoch, " +
            (switchedAlready ? $"--epoch {epoch} lies past it; every sample drawn is switched"
                : $"samples from --epoch {switchPosition.Epoch}, batch {switchPosition.BatchIndex} of data.batch_size {loader.Options.BatchSize}, on are switched"));
        return switchedAlready
            ? switched.Samples(start, endless: true)
            : loader.Samples(start, endless: true, until: switchPosition).Concat(switched.Samples(switchPosition, endless: true));
    }

    /// <summary>
    /// Writes the first <paramref name="count"/> of <paramref name="samples"/>, each as drawn by <paramref name="draw"/>,
    /// to &lt;dir&gt;/&lt;source image stem&gt;_&lt;index&gt;.png (atomically; the index is the sample's place in the
    /// stream, so an image drawn twice gets two files), printing "[k/N] FILE" as each is written.
    /// </summary>
    public static IReadOnlyList<string> WriteSamples(IEnumerable<DataSample> samples, int count, string dir, Func<DataSample, Mat> draw, TextWriter progress)
    {
        int digits = (count - 1).ToString(System.Globalization.CultureInfo.InvariantCulture).Length;
        var written = new List<string>(count);
        foreach (var sample in samples.Take(count))
        {
            var path = Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(sample.FilePath)}_{written.Count.ToString("D" + digits, System.Globalization.CultureInfo.InvariantCulture)}.png");
            using (var drawing = draw(sample)) ImageEncoder.WritePng(path, drawing);
            written.Add(path);
            progress.WriteLine($"[{written.Count}/{count}] {path}");
        }
        return written;
    }

    /// <summary>The sample's image with its ground-truth instances (<see cref="DetectionVisualizer.DrawGroundTruth"/>), as a BGR Mat the caller disposes.</summary>
    public static Mat DrawDetectionSample(DataSample sample, IReadOnlyList<string> classNames)
    {
        var bgr = ImageEncoder.ToBgr(sample.Image, sample.Height, sample.Width);
        try
        {
            DetectionVisualizer.DrawGroundTruth(bgr, sample, classNames);
            return bgr;
        }
        catch
        {
            bgr.Dispose();
            throw;
        }
    }

    /// <summary>The sample's image with its label map's colours, ignored pixels undrawn (<see cref="SegmentationVisualizer.Overlay"/>), as a BGR Mat the caller disposes.</summary>
    public static Mat DrawSegmentationSample(DataSample sample, int ignoreIndex)
    {
        var labels = sample.LabelMap ?? throw new InvalidOperationException($"{sample.FilePath}: a segmentation sample without a label map");
        using var bgr = ImageEncoder.ToBgr(sample.Image, sample.Height, sample.Width);
        return SegmentationVisualizer.Overlay(bgr, labels, ignoreIndex);
    }
}
