using System.Globalization;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Transforms;

namespace Vim.Detection;

/// <summary>
/// The data side of a detection task, without its model: the config's data settings checked, the COCO-format splits
/// (by default &lt;root&gt;/annotations/instances_&lt;split&gt;.json with images in &lt;root&gt;/&lt;split&gt;/; data.ann_file and
/// data.img_dir move them, <see cref="DatasetLayout"/>), and the loaders training (data.train_pipeline, else the LSJ
/// recipe at data.crop_size) and evaluation (data.test_pipeline, else ViTDet's test resize; <see cref="DataPipelines"/>)
/// read them with. <see cref="DetectionTask"/>
/// trains and evaluates through it, and `vim data browse` draws what its loaders produce.
/// </summary>
public sealed class DetectionData
{
    private readonly ExperimentConfig _config;
    private readonly DataConfig _data;
    private readonly DatasetLayout _layout;
    private readonly DetectionTestConfig _test;

    /// <param name="validationMasks">Validation samples carry their instance masks. Evaluation reads the masks from the
    /// annotation file itself (so a task leaves this off); drawing the ground truth needs them on the samples.</param>
    public DetectionData(ExperimentConfig config, bool validationMasks = false)
    {
        _config = config;
        var data = _data = config.Data;
        _test = config.Model.DetTest;
        var layout = _layout = CheckSettings(config, out _testSteps);
        PipelineSwitch = PipelineSwitch.Read(config);
        // Evaluation needs of the training files only their categories (the model's classes), so that is all read here:
        // building train2017's images and annotations takes tens of seconds and gigabytes. The splits are read whole when
        // training first asks for them (TrainSet); their images need not be on this machine until then (e.g. val2017 and
        // the annotations downloaded without train2017), and a box-only detector reads no segmentations, so box-only
        // annotation files (segmentation [] or absent) serve.
        bool masks = config.Model.DetHead.MaskOn;
        Func<string, IEnumerable<string>> requiredPaths = split => [layout.AnnotationFile(split)];
        var trainingCategories = TrainingSplits.ReadEach(data, layout.Describe(), requiredPaths,
            split => CategoryMap.Load(layout.AnnotationFile(split)));
        _trainSet = new(() => TrainingSplits.Open(data, layout.Describe(), requiredPaths,
            split => CocoInstanceDataset.Load(layout.AnnotationFile(split), layout.ImageDir(split),
                new CocoInstanceOptions { CheckImageFiles = false, WithMasks = masks, FilterCfg = data.FilterCfg })));
        _valSet = CocoInstanceDataset.Load(layout.AnnotationFile(data.ValSplit), layout.ImageDir(data.ValSplit),
            CocoInstanceOptions.Evaluation with { WithMasks = masks, MasksOnSamples = validationMasks });
        Categories = trainingCategories[0];
        CategorySource = layout.AnnotationFile(data.TrainSplits[0]);
        CheckClassCount(config);
        // The model's class k is the first training file's k-th category: a concatenated file listing other categories
        // would train its objects as other classes.
        for (int i = 1; i < trainingCategories.Count; i++)
            if (trainingCategories[i].FirstDifference(Categories) is { } partDifference)
                throw new VimException($"{layout.AnnotationFile(data.TrainSplits[i])} and {CategorySource} list different categories: {partDifference}; every split of " +
                    "data.train_split must list the same categories, since the model's class k is the first file's k-th category");
        // The model's class k is the training file's k-th category; evaluation maps it back through the validation
        // file, so a split that lists only the categories it contains would relabel every detection.
        if (_valSet.Categories.FirstDifference(Categories) is { } difference)
            throw new VimException($"{layout.AnnotationFile(data.ValSplit)} and {CategorySource} list different categories: {difference}; " +
                "both splits must list the same categories (COCO's instances_*.json list all of them in every split)");
        // Mask AP rasterises polygons at the image size: a validation file without sizes would fail at the first
        // evaluation, hours into training.
        if (masks && _valSet.Images.FirstOrDefault(i => i.Width <= 0 || i.Height <= 0) is { } unsized)
            throw new VimException($"{layout.AnnotationFile(data.ValSplit)}: image {unsized.Id} ('{unsized.FileName}') has no width/height, which mask AP " +
                "needs to rasterise polygons; add them (COCO's instances files have them) or set model.det_head.mask_on: false");
    }

    /// <summary>
    /// The data of `vim test --format-only`: the unlabelled <paramref name="split"/> alone (<see cref="UnlabelledSplit"/>),
    /// so a machine holding the test images, the checkpoint and the config needs neither the validation images nor its
    /// annotations. The classes are the training annotation file's categories when that file is there (the image-info
    /// file must then list the same), else the image-info file's own (COCO's list the 80 categories the server scores).
    /// <see cref="TrainSet"/> and <see cref="ValSet"/> are not read.
    /// </summary>
    public static DetectionData ForUnlabelledSplit(ExperimentConfig config, string split) => new(config, split);

    private DetectionData(ExperimentConfig config, string unlabelledSplit)
    {
        _config = config;
        _data = config.Data;
        _test = config.Model.DetTest;
        _layout = CheckSettings(config, out _testSteps);
        // The model's classes are the first training split's categories.
        var trainingFile = _layout.AnnotationFile(_data.TrainSplits[0]);
        var images = LoadUnlabelled(unlabelledSplit);
        if (File.Exists(trainingFile))
        {
            Categories = CategoryMap.Load(trainingFile);
            CategorySource = trainingFile;
            CheckUnlabelledCategories(images);
        }
        else
        {
            Categories = images.Categories;
            CategorySource = images.AnnotationSource;
        }
        CheckClassCount(config);
        _unlabelled = (unlabelledSplit, images);
    }

    /// <summary>The config's data and test settings checked before any file is read; the dataset's layout and data.test_pipeline's checked steps.</summary>
    private static DatasetLayout CheckSettings(ExperimentConfig config, out IReadOnlyList<TransformStepConfig>? testSteps, bool checkRoot = true)
    {
        var data = config.Data;
        if (data.Type != "coco")
            throw new VimException($"data.type '{data.Type}' is not a detection dataset; use coco (annotations/instances_<split>.json + <split>/ images, " +
                "or where data.ann_file and data.img_dir say)");
        var layout = DatasetLayout.Of(data);
        TrainingLoaderChecks.CheckSettings(data);
        if (data.FilterCfg is { MinSize: < 0 } filter)
            throw config.Written.Refuse("data.filter_cfg.min_size", $"data.filter_cfg.min_size is {filter.MinSize}; expected the smallest width and height in pixels a training image may have " +
                "(0 keeps every size, mmdet's COCO configs use 32)");
        if (data.CropSize[0] != data.CropSize[1])
            throw new VimException($"data.crop_size must be square for detection (large-scale jitter crops and pads to one side), got [{data.CropSize[0]}, {data.CropSize[1]}]");
        // Before any file is read: a typo in model.det_test stops a training run at once, not at its first evaluation.
        DetectionTestTimeAugmentation.CheckSettings(config.Model.DetTest, data.CropSize[0]);
        if (data.CopyPaste is { } copyPaste) CheckCopyPaste(copyPaste, config.Model.DetHead.MaskOn, "data.copy_paste");
        if (data.Mosaic is { } mosaic) Mosaic.CheckSettings(mosaic, written: config.Written);
        if (data.MixUp is { } mixUp) MixUp.CheckSettings(mixUp, written: config.Written);
        if (PipelineSwitch.Read(config) is { } change)
        {
            if (change.CopyPaste.Value is { } switchedCopyPaste) CheckCopyPaste(switchedCopyPaste, config.Model.DetHead.MaskOn, PipelineSwitch.Key + ".copy_paste");
            if (change.Mosaic.Value is { } switchedMosaic) Mosaic.CheckSettings(switchedMosaic, PipelineSwitch.Key + ".mosaic", config.Written);
            if (change.MixUp.Value is { } switchedMixUp) MixUp.CheckSettings(switchedMixUp, PipelineSwitch.Key + ".mixup", config.Written);
        }
        testSteps = DataPipelines.Check(config);
        if (checkRoot && !Directory.Exists(data.Root))
            throw new VimException($"data.root '{data.Root}' does not exist (for the built-in demo data run: ./vim data demo --kind coco --out {data.Root})");
        return layout;
    }

    /// <summary>
    /// The config's data and test settings alone, no file read: a caller that goes on to read the data (counting an epoch)
    /// reports a wrong setting as itself rather than as unreadable data.
    /// </summary>
    public static void CheckSettings(ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        CheckSettings(config, out _, checkRoot: false);
    }

    /// <summary>
    /// data.copy_paste's values (or data.pipeline_switch.copy_paste's, <paramref name="key"/>), and how objects are pasted: by
    /// their masks, which the training samples carry only for a detector with a mask head, or by their boxes (paste_by_box),
    /// which mmdet uses only where there are no masks.
    /// </summary>
    private static void CheckCopyPaste(CopyPasteConfig copyPaste, bool masks, string key)
    {
        CopyPaste.CheckSettings(copyPaste, key);
        if (!masks && !copyPaste.PasteByBox)
            throw new VimException($"{key} pastes objects by their masks, but model.det_head.mask_on is false, so the training samples carry none " +
                $"(mmdet's CopyPaste requires gt_masks); set {key}.paste_by_box: true to paste each object's box rectangle, or model.det_head.mask_on: true");
        if (masks && copyPaste.PasteByBox)
            throw new VimException($"{key}.paste_by_box is true, but model.det_head.mask_on is true, so objects are pasted by their masks and the setting " +
                "would change nothing (mmdet ignores it where masks exist, with a warning); remove it, or set model.det_head.mask_on: false for a box-only detector");
    }

    private void CheckClassCount(ExperimentConfig config)
    {
        if (Categories.Count != config.Model.NumClasses)
            throw new VimException($"model.num_classes is {config.Model.NumClasses} but {CategorySource} has {Categories.Count} categories");
    }

    /// <summary>The training splits read whole, on training's first use; null for <see cref="ForUnlabelledSplit"/>.</summary>
    private readonly Lazy<ConcatenatedSource<CocoInstanceDataset>>? _trainSet;
    private readonly CocoInstanceDataset? _valSet;
    /// <summary>The split <see cref="ForUnlabelledSplit"/> read, handed out by <see cref="UnlabelledSplit"/>.</summary>
    private readonly (string Split, CocoInstanceDataset Images)? _unlabelled;

    /// <summary>The model's classes: class k is the k-th category (in id order) of <see cref="CategorySource"/>; results name it by that category's id.</summary>
    public CategoryMap Categories { get; }

    /// <summary>The annotation file <see cref="Categories"/> come from, for messages.</summary>
    public string CategorySource { get; }

    /// <summary>One line on what was read, for logs (`vim train` prints it as training starts).</summary>
    public string Summary => _unlabelled is { } unlabelled
        ? $"{unlabelled.Images.Count} images of {unlabelled.Split}, {Categories.Count} classes"
        : _trainSet is { IsValueCreated: true }
            ? $"{TrainingDescription()} and {ValSet.Count} validation images, {Categories.Count} classes"
            : $"{ValSet.Count} validation images, {Categories.Count} classes (the categories of {CategorySource}; training images not read)";

    /// <summary>The training samples for <see cref="Summary"/>: the images, and the samples an epoch makes of them where that differs.</summary>
    private string TrainingDescription()
    {
        var text = $"{TrainSet.Count} training images{(_data.TrainSplits.Count > 1 ? $" (splits {TrainingSplits.Describe(_data)})" : "")}";
        int withoutObjects = TrainSet.Parts.Sum(part => part.ImagesWithoutObjectsSkipped), small = TrainSet.Parts.Sum(part => part.ImagesBelowMinSizeSkipped);
        var reasons = new List<string>();
        if (withoutObjects > 0)
            reasons.Add($"{withoutObjects} " + (_data.FilterCfg is null ? "without a usable non-crowd object" : "without annotations (data.filter_cfg.filter_empty_gt)"));
        if (small > 0) reasons.Add($"{small} smaller than {_data.FilterCfg!.MinSize} pixels on a side (data.filter_cfg.min_size)");
        if (reasons.Count > 0) text += $" ({withoutObjects + small} more filtered out: {string.Join(", ", reasons)})";
        bool repeated = _data.TrainRepeat > 1;
        var balanced = ClassBalancedTrainSet as ClassBalancedSource;
        if (balanced is not null)
            text += $", class-balanced to {balanced.Count}{(repeated ? "" : " per epoch")} (data.class_balanced_thr {balanced.Threshold.ToString(CultureInfo.InvariantCulture)})";
        if (repeated)
            text += $", each visited {_data.TrainRepeat} times an epoch (data.train_repeat)" +
                (balanced is not null ? $": {TrainingSamples.Count} samples per epoch" : "");
        if (_data.Mosaic is { } mosaic) text += mosaic.Cached ? $", each in a mosaic with three of the last {mosaic.MaxCachedImages} (data.mosaic, cached)" : ", each in a mosaic with three others (data.mosaic)";
        if (_data.MixUp is { } mixUp) text += mixUp.Cached ? $", each blended with one of the last {mixUp.MaxCachedImages} (data.mixup, cached)" : ", each blended with another (data.mixup)";
        if (_data.CopyPaste is not null) text += ", each with objects of another pasted in (data.copy_paste)";
        return text;
    }

    /// <summary>The splits of data.train_split, concatenated in the listed order (not balanced or repeated: <see cref="TrainingSamples"/>).</summary>
    /// <remarks>Read whole on first use (the training file's images and annotations), which only training needs.</remarks>
    public ConcatenatedSource<CocoInstanceDataset> TrainSet => _trainSet?.Value ?? throw NotRead("training");

    /// <summary>
    /// <see cref="TrainSet"/> class-balanced by data.class_balanced_thr over all its splits (a <see cref="ClassBalancedSource"/>
    /// counting each image's annotated classes, crowd regions included), or <see cref="TrainSet"/> itself when it is unset.
    /// </summary>
    public ISampleSource ClassBalancedTrainSet => _classBalancedTrainSet ??= TrainingSplits.ClassBalanced(TrainSet, index =>
    {
        var (part, indexInPart) = TrainSet.Locate(index);
        return TrainSet.Parts[part].ClassesIn(indexInPart);
    }, _data);

    private ISampleSource? _classBalancedTrainSet;

    /// <summary>What the training loader draws from: <see cref="ClassBalancedTrainSet"/> repeated data.train_repeat times.</summary>
    public RepeatedSource TrainingSamples => TrainingSplits.Repeated(ClassBalancedTrainSet, _data);

    public CocoInstanceDataset ValSet => _valSet ?? throw NotRead("validation");

    private InvalidOperationException NotRead(string split) =>
        new($"the {split} split was not read: this data holds the unlabelled split {_unlabelled?.Split} alone (DetectionData.ForUnlabelledSplit)");

    /// <summary>The side test images are fitted into (ViTDet's ResizeShortestEdge to the training crop, data.crop_size) where data.test_pipeline is unset.</summary>
    public int TestSize => _data.CropSize[0];

    /// <summary>data.test_pipeline, bound and checked once, when this data was built; null: the recipe's resize into <see cref="TestSize"/>.</summary>
    public IReadOnlyList<TransformStepConfig>? TestSteps => _testSteps;

    private readonly IReadOnlyList<TransformStepConfig>? _testSteps;

    /// <summary>A split's annotation file: &lt;root&gt;/annotations/instances_&lt;split&gt;.json, or where data.ann_file says.</summary>
    public static string AnnotationFile(DataConfig data, string split) => DatasetLayout.Of(data).AnnotationFile(split);

    /// <summary>
    /// The categories a trained detector's classes are reported as, without its dataset: the first training split's
    /// annotation file (else the validation split's) when it exists, its categories alone read (train2017's images and
    /// annotations would take tens of seconds to build and are never used), refused when their count is not
    /// model.num_classes; otherwise "class K" with ids K+1, noted on <paramref name="log"/>, so a checkpoint can be used
    /// without its dataset.
    /// </summary>
    public static CategoryMap CategoriesForInference(ExperimentConfig config, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var data = config.Data;
        // The model's classes are the first training file's categories in id order.
        foreach (var split in data.TrainSplits.Take(1).Append(data.ValSplit))
        {
            var path = AnnotationFile(data, split);
            if (!File.Exists(path)) continue;
            var map = CategoryMap.Load(path);
            if (map.Count != config.Model.NumClasses)
                throw new VimException($"{path} has {map.Count} categories but model.num_classes is {config.Model.NumClasses}");
            return map;
        }
        log?.WriteLine($"note: no annotation file {AnnotationFile(data, data.TrainSplits[0])} (nor the validation split's); labels are class indices");
        return new CategoryMap(Enumerable.Range(0, config.Model.NumClasses).Select(k => new CocoCategory(k + 1, $"class {k}", null)));
    }

    /// <summary>
    /// COCO's layout for a split without annotations (test-dev): &lt;root&gt;/annotations/image_info_&lt;split&gt;.json, as COCO
    /// distributes image_info_test-dev2017.json and image_info_test2017.json (images and categories, no annotations).
    /// </summary>
    public static string ImageInfoFile(DataConfig data, string split) => Path.Combine(data.Root, "annotations", $"image_info_{split}.json");

    /// <summary>
    /// The image folder of an unlabelled split: the image folder (data.img_dir) of the split without "-dev", since COCO ships
    /// test-dev's images inside test2017/ (test-dev2017 → test2017/, test2017 → test2017/).
    /// </summary>
    private string UnlabelledImageFolder(string split) => _layout.ImageDir(split.Replace("-dev", "", StringComparison.Ordinal));

    /// <summary>
    /// The images of a split without annotations (<see cref="ImageInfoFile"/>, images in <see cref="UnlabelledImageFolder"/>),
    /// for `vim test --format-only`. Its categories must be the training file's: the model's class k is reported as the
    /// training file's k-th category id, which the server reads against the categories it published.
    /// </summary>
    public CocoInstanceDataset UnlabelledSplit(string split)
    {
        if (_unlabelled is { } read)
            return read.Split == split ? read.Images
                : throw new InvalidOperationException($"this data was read for the unlabelled split {read.Split}, not {split}");
        var images = LoadUnlabelled(split);
        CheckUnlabelledCategories(images);
        return images;
    }

    private CocoInstanceDataset LoadUnlabelled(string split)
    {
        var file = ImageInfoFile(_data, split);
        if (!File.Exists(file))
            throw new VimException($"--split {split}: {file} not found; expected COCO's image-info json for the split (\"images\" and \"categories\", " +
                $"no \"annotations\", e.g. annotations/image_info_test-dev2017.json) with its images in {UnlabelledImageFolder(split)}");
        // Every listed image is predicted (none is skipped for lacking annotations), and each must be on disk.
        return CocoInstanceDataset.Load(file, UnlabelledImageFolder(split), CocoInstanceOptions.Evaluation with { WithMasks = false, MasksOnSamples = false });
    }

    private void CheckUnlabelledCategories(CocoInstanceDataset images)
    {
        if (images.Categories.FirstDifference(Categories) is { } difference)
            throw new VimException($"{images.AnnotationSource} and {CategorySource} list different categories: {difference}; the results name the model's " +
                "classes by the training file's category ids, so the image-info file must list the same categories (COCO's do)");
    }

    /// <summary>What training needs of the data beyond evaluation: one full batch of the training samples per process, and every training split's images on disk.</summary>
    public void CheckTrainingData(DataShard shard)
    {
        TrainingLoaderChecks.CheckTrainingSplit(_data, TrainSet.Count, shard.WorldSize,
            ClassBalancedTrainSet is ClassBalancedSource balanced ? balanced.Count : null);
        foreach (var split in TrainSet.Parts) split.RequireImageFiles();
    }

    /// <summary>
    /// The training loader of one process over <see cref="TrainingSamples"/>: shuffled by <paramref name="seed"/>, each
    /// sample's augmentation seeded by (seed, epoch, index in the training samples); with data.mosaic, data.mixup and
    /// data.copy_paste, other training samples, augmented the same way, mixed into each before the pipeline's first random_affine or Normalize, in that order
    /// (<see cref="MixingTransforms"/>).
    /// </summary>
    public DataLoader TrainingLoader(int seed, DataShard shard) => TrainingLoader(_config, seed, shard);

    /// <summary>data.pipeline_switch's settings, checked when this data was built; null without a switch.</summary>
    public PipelineSwitch? PipelineSwitch { get; }

    /// <summary>
    /// <see cref="TrainingLoader(int, DataShard)"/> after data.pipeline_switch: the same samples, shuffle, per-sample seeds and
    /// batches through the pipeline and mixing transforms the switch names (<see cref="PipelineSwitch.ApplyTo"/>).
    /// </summary>
    public DataLoader SwitchedTrainingLoader(int seed, DataShard shard) =>
        TrainingLoader((PipelineSwitch ?? throw new InvalidOperationException($"{PipelineSwitch.Key} is unset")).ApplyTo(_config), seed, shard);

    private DataLoader TrainingLoader(ExperimentConfig config, int seed, DataShard shard)
    {
        CheckTrainingData(shard);
        return new DataLoader(TrainingSamples, DataPipelines.Training(config), new LoaderOptions
        {
            BatchSize = _data.BatchSize, Kind = BatchKind.Detection, NumWorkers = _data.NumWorkers, Seed = seed, Shuffle = true, DropLast = true,
            Rank = shard.Rank, WorldSize = shard.WorldSize, SizeDivisor = 32,
        }, MixingTransforms(config.Data));
    }

    /// <summary>
    /// The mixing transforms data sets, in the order they run: Mosaic, MixUp, CopyPaste (YOLOX's order for the first two,
    /// each mixing into what the one before made; copy-paste last, pasting objects over the mixed image).
    /// </summary>
    public static IReadOnlyList<ISampleMixer> MixingTransforms(DataConfig data)
    {
        var mixers = new List<ISampleMixer>();
        if (data.Mosaic is { } mosaic) mixers.Add(new Mosaic(mosaic));
        if (data.MixUp is { } mixUp) mixers.Add(new MixUp(mixUp));
        if (data.CopyPaste is { } copyPaste) mixers.Add(new CopyPaste(copyPaste));
        return mixers;
    }

    /// <summary>
    /// The test pipelines, one per model.det_test.scales ratio (each resizes the original image): data.test_pipeline with its
    /// resize scaled by the ratio, else the recipe's resize into data.crop_size × the ratio.
    /// </summary>
    public IReadOnlyList<TransformPipeline> TestPipelines() => DetectionTestTimeAugmentation.TestPipelines(TestSize, _test, TestSteps);

    /// <summary>
    /// The test views of <paramref name="images"/> as evaluation reads them: per image, one batch per model.det_test.scales
    /// ratio (the original image, decoded once, resized for each), in order. The caller disposes the batches.
    /// </summary>
    public IEnumerable<Batch[]> EvaluationViews(ISampleSource images) => LockstepBatches.Views(images, TestPipelines(), EvaluationLoader);

    /// <summary>The evaluation loader over <paramref name="images"/> (the validation split or a rank's share of it) at the test scale 1.0: in order, one image a batch.</summary>
    public DataLoader EvaluationLoader(ISampleSource images) => EvaluationLoader(images, DataPipelines.DetectionTesting(TestSteps, TestSize, 1.0));

    /// <summary><see cref="EvaluationLoader(ISampleSource)"/> through another test pipeline (one of <see cref="TestPipelines"/>).</summary>
    public DataLoader EvaluationLoader(ISampleSource images, TransformPipeline pipeline) =>
        new(images, pipeline, new LoaderOptions
        {
            BatchSize = 1, Kind = BatchKind.Detection, NumWorkers = _data.NumWorkers, Shuffle = false, DropLast = false, SizeDivisor = 32,
        });
}
