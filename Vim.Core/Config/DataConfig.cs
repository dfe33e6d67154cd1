namespace Vim.Core.Config;

public sealed class DataConfig
{
    /// <summary>Dataset format: coco (instances json + images) or ade20k (images/ + annotations/ PNGs).</summary>
    public string Type { get; set; } = "ade20k";

    /// <summary>Dataset root folder; relative paths are resolved from the working directory.</summary>
    public string Root { get; set; } = "data/ade/ADEChallengeData2016";

    /// <summary>
    /// COCO: a split's annotation file under data.root, {split} standing for the split's name (MMDetection's ann_file); null:
    /// annotations/instances_{split}.json. See <see cref="DatasetLayout"/>.
    /// </summary>
    public string? AnnFile { get; set; }

    /// <summary>A split's image folder under data.root, with {split} (MMDetection's data_prefix.img, MMSegmentation's
    /// data_prefix.img_path); null: {split} for COCO, images/{split} for ADE20k.</summary>
    public string? ImgDir { get; set; }

    /// <summary>Segmentation: a split's label-map folder under data.root, with {split} (MMSegmentation's data_prefix.seg_map_path); null: annotations/{split}.</summary>
    public string? SegMapDir { get; set; }

    /// <summary>Segmentation: how image file names end (MMSegmentation's img_suffix); null: .jpg.</summary>
    public string? ImgSuffix { get; set; }

    /// <summary>Segmentation: how label-map file names end (MMSegmentation's seg_map_suffix); an image pairs with the label map
    /// at the same path below its folder; null: .png.</summary>
    public string? SegMapSuffix { get; set; }

    /// <summary>
    /// The training split, or several trained on as one (MMDetection's ConcatDataset): `train_split: train2017` or
    /// `train_split: [train2017, val35k]`, each in the dataset's layout under data.root and read as one split is. Their
    /// samples follow each other in the listed order; detection's classes are the first split's categories.
    /// </summary>
    [ConfigKey("train_split"), ScalarOrList]
    public List<string> TrainSplits { get; set; } = ["training"];

    /// <summary>
    /// The training split of a config that names one (data.train_split as a single value, the form every config had
    /// before lists): setting it replaces <see cref="TrainSplits"/> by that split alone; reading it with several listed
    /// is refused, since code that reads one split would miss the others.
    /// </summary>
    [ConfigIgnore]
    public string TrainSplit
    {
        get => TrainSplits.Count == 1
            ? TrainSplits[0]
            : throw new InvalidOperationException($"data.train_split lists {TrainSplits.Count} splits ({string.Join(", ", TrainSplits)}); read TrainSplits");
        set => TrainSplits = [value];
    }

    /// <summary>
    /// Each epoch visits the training samples this many times (MMDetection's RepeatDataset `times`): for a small dataset,
    /// fewer epoch boundaries and the same schedule in iterations. Every repetition draws its own augmentation.
    /// </summary>
    public int TrainRepeat { get; set; } = 1;

    /// <summary>
    /// Detection only: class-balanced repeat sampling (MMDetection's ClassBalancedDataset `oversample_thr`, detectron2's
    /// RepeatFactorTrainingSampler `repeat_thresh`, in its deterministic form), within (0, 1]. A class found in a fraction
    /// f of the training images gets the repeat factor max(1, √(thr / f)), and each image appears ⌈its rarest class's
    /// factor⌉ times an epoch, before data.train_repeat. Null: every image once.
    /// </summary>
    public double? ClassBalancedThr { get; set; }

    /// <summary>
    /// Detection only: which training images are kept (MMDetection's filter_cfg, <see cref="DatasetFilterConfig"/>), e.g.
    /// <c>{filter_empty_gt: true, min_size: 32}</c>; null: the images holding a usable non-crowd object.
    /// </summary>
    public DatasetFilterConfig? FilterCfg { get; set; }

    /// <summary>Detection only: Simple Copy-Paste of a second training sample's objects into each (<see cref="CopyPasteConfig"/>); null: off.</summary>
    public CopyPasteConfig? CopyPaste { get; set; }

    /// <summary>
    /// Detection only: mmdet's Mosaic of each training sample with three others (<see cref="MosaicConfig"/>); null: off. With
    /// several mixing transforms set they run in the order mosaic, mixup, copy_paste, each on the result of the one before.
    /// </summary>
    public MosaicConfig? Mosaic { get; set; }

    /// <summary>Detection only: mmdet's MixUp of each training sample with another (<see cref="MixUpConfig"/>); null: off.</summary>
    [ConfigKey("mixup")]
    public MixUpConfig? MixUp { get; set; }

    public string ValSplit { get; set; } = "validation";

    /// <summary>Images per iteration on one process.</summary>
    public int BatchSize { get; set; } = 2;

    public int NumWorkers { get; set; } = 2;

    /// <summary>
    /// Training crop (height, width). Detection (square): also the side test and `vim infer` images are fitted into
    /// (ViTDet tests at its training size).
    /// </summary>
    public List<int> CropSize { get; set; } = [512, 512];

    /// <summary>Segmentation resize target (long edge, short edge), keep ratio; training jitters it by 0.5–2×.</summary>
    public List<int> Scale { get; set; } = [2048, 512];

    /// <summary>
    /// The training data pipeline, MMDetection's and MMSegmentation's train_pipeline after image and annotation loading: a
    /// list of one-key steps, each naming a transform with its options (<c>- random_crop: {height: 512, width: 512}</c>; the
    /// transforms are Vim.Data's TransformStepConfig). Null: the task's official recipe, built from data.crop_size (and
    /// segmentation's data.scale and model.seg_head.ignore_index); docs/FROM_MMDETECTION.md writes both recipes out as YAML.
    /// Kept here as written: Vim.Data's DataPipelines binds it and checks it against what the task's loader and model need.
    /// </summary>
    public ConfigList? TrainPipeline { get; set; }

    /// <summary>
    /// Switches the training pipeline for the last part of the run (MMDetection's PipelineSwitchHook and YOLOXModeSwitchHook):
    /// <c>{at: 280, train_pipeline: [...], mosaic: null, mixup: null, copy_paste: null}</c>. After <c>at</c> epochs (with
    /// schedule.max_epochs) or iterations, the training loader reads the keys the section names in place of data's own
    /// (null: the recipe for train_pipeline, off for a mixing transform); keys it leaves out keep their values. Kept as
    /// written and read by <see cref="Config.PipelineSwitch.Read"/>, since a key left out and a key set to null differ.
    /// </summary>
    public ConfigMap? PipelineSwitch { get; set; }

    /// <summary>
    /// The test data pipeline (MMDetection's and MMSegmentation's test_pipeline), in the form of <see cref="TrainPipeline"/>:
    /// resize (one scale) and normalize, and for detection pad. Each model.det_test / model.seg_test scales ratio multiplies
    /// its resize scale, as the recipes multiply data.crop_size / data.scale. Null: the task's official recipe.
    /// </summary>
    public ConfigList? TestPipeline { get; set; }

    /// <summary>ADE-style labels: 0 is "other" (ignored) and k becomes class k − 1.</summary>
    public bool ReduceZeroLabel { get; set; } = true;

    /// <summary>A file with one class name per line; empty: &lt;root&gt;/class_names.txt if present, else the official list.</summary>
    public string ClassNames { get; set; } = "";
}
