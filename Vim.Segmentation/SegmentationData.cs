using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Transforms;

namespace Vim.Segmentation;

/// <summary>
/// The data side of a segmentation task, without its model: the config's data settings checked, the splits (by default
/// ADE20k's layout, images/&lt;split&gt;/*.jpg + annotations/&lt;split&gt;/*.png; data.img_dir, seg_map_dir, img_suffix and
/// seg_map_suffix move them, <see cref="DatasetLayout"/>) with their class list, and the loaders training (data.train_pipeline,
/// else the mmseg ADE20k recipe) and evaluation (one test pipeline per model.seg_test.scales ratio, from data.test_pipeline
/// or the recipe; <see cref="DataPipelines"/>) read them with.
/// <see cref="SegmentationTask"/> trains and evaluates through it, and `vim data browse` draws what its loaders produce.
/// </summary>
public sealed class SegmentationData
{
    private readonly ExperimentConfig _config;
    private readonly DatasetLayout _layout;
    /// <summary>data.test_pipeline, bound and checked once, when this data was built; null: the recipe.</summary>
    private readonly IReadOnlyList<TransformStepConfig>? _testSteps;

    public SegmentationData(ExperimentConfig config)
    {
        _config = config;
        (ClassNames, _layout, _testSteps) = CheckSettingsAndReadClasses(config);
        PipelineSwitch = PipelineSwitch.Read(config);
        _trainSet = TrainingSplits.Open(config.Data, _layout.Describe(), split => [_layout.ImageDir(split), _layout.LabelDir(split)],
            split => Dataset(split));
        _valSet = Dataset(config.Data.ValSplit);
    }

    /// <summary>
    /// The data of `vim test --format-only`: the classes (data.class_names, the root's class_names.txt or ADE20k's 150) and
    /// the unlabelled <paramref name="split"/> alone (<see cref="UnlabelledSplit"/>), so a machine holding the test images,
    /// the checkpoint and the config needs neither the training nor the validation split. <see cref="TrainSet"/> and
    /// <see cref="ValSet"/> are not read.
    /// </summary>
    public static SegmentationData ForUnlabelledSplit(ExperimentConfig config, string split) => new(config, split);

    private SegmentationData(ExperimentConfig config, string unlabelledSplit)
    {
        _config = config;
        (ClassNames, _layout, _testSteps) = CheckSettingsAndReadClasses(config);
        _unlabelled = (unlabelledSplit, Dataset(unlabelledSplit, labelled: false));
    }

    /// <summary>The config's data and test settings checked before any file is read; the classes, the layout and data.test_pipeline's checked steps.</summary>
    private static (IReadOnlyList<string> ClassNames, DatasetLayout Layout, IReadOnlyList<TransformStepConfig>? TestSteps) CheckSettingsAndReadClasses(ExperimentConfig config)
    {
        var (layout, testSteps) = CheckedSettings(config);
        var data = config.Data;
        if (!Directory.Exists(data.Root))
            throw new VimException($"data.root '{data.Root}' does not exist (for the built-in demo data run: ./vim data demo --kind ade --out {data.Root})");
        return (LoadClassNames(config), layout, testSteps);
    }

    /// <summary>
    /// The config's data and test settings alone, no file read: a caller that goes on to read the data (counting an epoch)
    /// reports a wrong setting as itself rather than as unreadable data.
    /// </summary>
    public static void CheckSettings(ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        CheckedSettings(config);
    }

    private static (DatasetLayout Layout, IReadOnlyList<TransformStepConfig>? TestSteps) CheckedSettings(ExperimentConfig config)
    {
        var data = config.Data;
        if (data.Type != "ade20k")
            throw new VimException($"data.type '{data.Type}' is not a segmentation dataset; use ade20k (images/ + annotations/ with PNG labels, " +
                "or where data.img_dir and data.seg_map_dir say)");
        var layout = DatasetLayout.Of(data);
        TrainingLoaderChecks.CheckSettings(data);
        SegmentationInference.CheckSettings(config.Model.SegTest);
        return (layout, DataPipelines.Check(config));
    }

    private readonly ConcatenatedSource<SegmentationFolderDataset>? _trainSet;
    private readonly SegmentationFolderDataset? _valSet;
    /// <summary>The split <see cref="ForUnlabelledSplit"/> read, handed out by <see cref="UnlabelledSplit"/>.</summary>
    private readonly (string Split, SegmentationFolderDataset Images)? _unlabelled;

    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The splits of data.train_split, concatenated in the listed order (not repeated: <see cref="TrainingSamples"/>).</summary>
    public ConcatenatedSource<SegmentationFolderDataset> TrainSet => _trainSet ?? throw NotRead("training");

    /// <summary>What the training loader draws from: <see cref="TrainSet"/> repeated data.train_repeat times.</summary>
    public RepeatedSource TrainingSamples => TrainingSplits.Repeated(TrainSet, _config.Data);

    public SegmentationFolderDataset ValSet => _valSet ?? throw NotRead("validation");

    private InvalidOperationException NotRead(string split) =>
        new($"the {split} split was not read: this data holds the unlabelled split {_unlabelled?.Split} alone (SegmentationData.ForUnlabelledSplit)");

    /// <summary>The label of unlabelled pixels (model.seg_head.ignore_index): the losses and metrics skip them, and padding writes it.</summary>
    public int IgnoreIndex => _config.Model.SegHead.IgnoreIndex;

    /// <summary>What training needs of the data beyond evaluation: one full batch of the training samples per process.</summary>
    public void CheckTrainingData(DataShard shard) => TrainingLoaderChecks.CheckTrainingSplit(_config.Data, TrainSet.Count, shard.WorldSize);

    /// <summary>
    /// The training loader of one process over <see cref="TrainingSamples"/>: shuffled by <paramref name="seed"/>, each
    /// sample's augmentation seeded by (seed, epoch, index in the training samples).
    /// </summary>
    public DataLoader TrainingLoader(int seed, DataShard shard) => TrainingLoader(_config, seed, shard);

    /// <summary>data.pipeline_switch's settings, checked when this data was built; null without a switch.</summary>
    public PipelineSwitch? PipelineSwitch { get; }

    /// <summary>
    /// <see cref="TrainingLoader(int, DataShard)"/> after data.pipeline_switch: the same samples, shuffle, per-sample seeds and
    /// batches through the switch's training pipeline (<see cref="PipelineSwitch.ApplyTo"/>).
    /// </summary>
    public DataLoader SwitchedTrainingLoader(int seed, DataShard shard) =>
        TrainingLoader((PipelineSwitch ?? throw new InvalidOperationException($"{PipelineSwitch.Key} is unset")).ApplyTo(_config), seed, shard);

    private DataLoader TrainingLoader(ExperimentConfig config, int seed, DataShard shard)
    {
        var data = config.Data;
        CheckTrainingData(shard);
        // Samples of unequal sizes (a pipeline without a fixed crop or pad) are batched by padding each batch to its largest,
        // labels with the ignore index, as mmseg's SegDataPreProcessor pads a batch.
        return new DataLoader(TrainingSamples, DataPipelines.Training(config), new LoaderOptions
        {
            BatchSize = data.BatchSize, Kind = BatchKind.Segmentation, NumWorkers = data.NumWorkers, Seed = seed, Shuffle = true, DropLast = true,
            SegPadValue = IgnoreIndex,
            Rank = shard.Rank, WorldSize = shard.WorldSize,
        });
    }

    /// <summary>
    /// The test pipelines, one per model.seg_test.scales ratio (mmseg resizes the original image for each): data.test_pipeline
    /// with its resize scaled by the ratio, else the recipe's resize into data.scale × the ratio.
    /// </summary>
    public IReadOnlyList<TransformPipeline> TestPipelines() =>
        SegmentationInference.TestPipelines(_config.Data.Scale, _config.Model.SegTest, _testSteps);

    /// <summary>
    /// An evaluation loader over <paramref name="images"/> (the validation split, a rank's share of it, or an unlabelled split)
    /// through one test pipeline: in order, one image a batch, without labels (evaluation compares at the original size).
    /// </summary>
    public DataLoader EvaluationLoader(ISampleSource images, TransformPipeline pipeline) =>
        new(images, pipeline, new LoaderOptions
        {
            BatchSize = 1, Kind = BatchKind.Images, NumWorkers = _config.Data.NumWorkers, Shuffle = false, DropLast = false,
        });

    /// <summary>
    /// The images of a split that has no labels (ADE20k's test images, &lt;root&gt;/images/&lt;split&gt;), for `vim test --format-only`:
    /// every image file in the folder, in name order, with the dataset's classes and reduce_zero_label.
    /// </summary>
    public SegmentationFolderDataset UnlabelledSplit(string split)
    {
        if (_unlabelled is { } read)
            return read.Split == split ? read.Images
                : throw new InvalidOperationException($"this data was read for the unlabelled split {read.Split}, not {split}");
        return Dataset(split, labelled: false);
    }

    private SegmentationFolderDataset Dataset(string split, bool labelled = true)
    {
        var data = _config.Data;
        return new SegmentationFolderDataset(new SegmentationFolderOptions
        {
            ImageDir = _layout.ImageDir(split),
            AnnotationDir = labelled ? _layout.LabelDir(split) : null,
            ImageSuffix = _layout.ImageSuffix,
            AnnotationSuffix = _layout.LabelSuffix,
            ClassNames = ClassNames,
            ReduceZeroLabel = data.ReduceZeroLabel,
            IgnoreIndex = _config.Model.SegHead.IgnoreIndex,
        });
    }

    /// <summary>
    /// The names a trained segmentor's classes are reported as, without reading any split: data.class_names, else the
    /// root's class_names.txt, else ADE20k's 150 classes, refused when their count is not model.num_classes; when neither
    /// file exists and the model has another class count than ADE20k's, "class K", noted on <paramref name="log"/>, so a
    /// checkpoint can be used without its dataset.
    /// </summary>
    public static IReadOnlyList<string> ClassNamesForInference(ExperimentConfig config, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (ClassNamesSource(config.Data) == OfficialAdeClasses && config.Model.NumClasses != Ade20kClasses.Names.Count)
        {
            log?.WriteLine($"note: no class names (data.class_names, {Path.Combine(config.Data.Root, "class_names.txt")}) for model.num_classes " +
                $"{config.Model.NumClasses}; classes are named by index");
            return Enumerable.Range(0, config.Model.NumClasses).Select(k => $"class {k}").ToList();
        }
        return LoadClassNames(config);
    }

    private const string OfficialAdeClasses = "official ADE20k classes";

    private static IReadOnlyList<string> LoadClassNames(ExperimentConfig config)
    {
        var data = config.Data;
        var path = ClassNamesSource(data);
        var classNames = path == OfficialAdeClasses ? Ade20kClasses.Names : SegmentationFolderDataset.ReadClassNames(path);
        if (classNames.Count != config.Model.NumClasses)
            throw new VimException($"model.num_classes is {config.Model.NumClasses} but the dataset has {classNames.Count} classes ({path})");
        return classNames;
    }

    private static string ClassNamesSource(DataConfig data)
    {
        if (data.ClassNames.Length > 0) return data.ClassNames;
        var beside = Path.Combine(data.Root, "class_names.txt");
        return File.Exists(beside) ? beside : OfficialAdeClasses;
    }
}
