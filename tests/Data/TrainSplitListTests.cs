using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Detection;
using Vim.Tests.Segmentation;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Data;

/// <summary>
/// Everything that reads the training split, with data.train_split listing several (and data.train_repeat): the tasks'
/// refusals, the one-full-batch check, distributed shards, a resumed training run, the segmentation baseline and
/// `vim data browse`.
/// </summary>
public class TrainSplitListTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>
    /// Demo ADE data under &lt;root&gt;/ade with 8 training images, plus a split "extra" of 4 more (another seed's training
    /// images, renamed extra_*, so a file says which split it came from); the tiny segmentation test config over both.
    /// </summary>
    private ExperimentConfig AdeWithExtraSplit()
    {
        var root = _files.PathOf("ade");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = root, TrainImages = 8, ValImages = 4, Width = 64, Height = 64, Seed = 5 });
        var other = _files.PathOf("other");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = other, TrainImages = 4, ValImages = 1, Width = 64, Height = 64, Seed = 9 });
        foreach (var folder in new[] { "images", "annotations" })
        {
            var target = Directory.CreateDirectory(Path.Combine(root, folder, "extra")).FullName;
            foreach (var file in Directory.GetFiles(Path.Combine(other, folder, "training")))
                File.Move(file, Path.Combine(target, "extra_" + Path.GetFileName(file)));
        }
        var config = SegmentationTaskTests.ConfigAt(_files.Root);
        config.Data.TrainSplits = ["training", "extra"];
        return config;
    }

    /// <summary>Demo COCO data under &lt;files&gt;/coco (64², seed 3) and the tiny detection test config training on <paramref name="trainSplits"/>.</summary>
    internal static ExperimentConfig DemoCoco(DataTestFiles files, int trainImages, int valImages, params string[] trainSplits)
    {
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = files.PathOf("coco"), TrainImages = trainImages, ValImages = valImages, Width = 64, Height = 64, Seed = 3,
        });
        var config = DetectionTaskTests.ConfigAt(files.Root);
        config.Data.TrainSplits = [.. trainSplits];
        return config;
    }

    private static string[] Stems(string folder) => Directory.GetFiles(folder).Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal).ToArray()!;

    [Test]
    public void ADetectionSplitWithOtherCategoriesIsRefusedNamingBothFiles()
    {
        var config = DemoCoco(_files, trainImages: 4, valImages: 2, "train", "extra");
        var root = config.Data.Root;
        // An export of the validation images that renames category 2: the model's class 1 would learn its objects under
        // another name.
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(root, "annotations", "instances_val.json")))!;
        var renamed = json["categories"]![1]!;
        var (id, name) = (renamed["id"]!.GetValue<long>(), renamed["name"]!.GetValue<string>());
        renamed["name"] = "something else";
        var extraFile = Path.Combine(root, "annotations", "instances_extra.json");
        File.WriteAllText(extraFile, json.ToJsonString());
        Directory.Move(Path.Combine(root, "val"), Path.Combine(root, "extra"));
        config.Data.ValSplit = "train";

        var e = Assert.Throws<VimException>(() => new DetectionData(config))!;
        var trainFile = Path.Combine(root, "annotations", "instances_train.json");
        Assert.That(e.Message, Is.EqualTo($"{extraFile} and {trainFile} list different categories: class 1 is category {id} 'something else' in one and " +
            $"category {id} '{name}' in the other ({DemoDatasetGenerator.ClassNames.Count} against {DemoDatasetGenerator.ClassNames.Count} categories); " +
            "every split of data.train_split must list the same categories, since the model's class k is the first file's k-th category"));

        renamed["name"] = name;
        File.WriteAllText(extraFile, json.ToJsonString());
        Assert.That(new DetectionData(config).TrainSet.Parts.Select(part => part.AnnotationSource), Is.EqualTo(new[] { trainFile, extraFile }), "the same categories pass");
    }

    [Test]
    public void AMissingSplitInTheListIsRefusedNamingIt()
    {
        var detection = DemoCoco(_files, trainImages: 2, valImages: 2, "train", "val35k");
        var coco = detection.Data.Root;
        var e = Assert.Throws<VimException>(() => new DetectionData(detection))!;
        Assert.That(e.Message, Is.EqualTo($"data.train_split: split 'val35k' not found: {Path.Combine(coco, "annotations", "instances_val35k.json")} does not exist; " +
            $"each training split needs annotations/instances_<split>.json and the image folder <split>/ under data.root {coco}"));

        var config = AdeWithExtraSplit();
        config.Data.TrainSplits = ["training", "extra", "more"];
        var ade = config.Data.Root;
        e = Assert.Throws<VimException>(() => new SegmentationData(config))!;
        Assert.That(e.Message, Is.EqualTo($"data.train_split: split 'more' not found: {Path.Combine(ade, "images", "more")} does not exist; " +
            $"each training split needs images/<split>/*.jpg and annotations/<split>/*.png under data.root {ade}"));
        Directory.CreateDirectory(Path.Combine(ade, "images", "more"));
        e = Assert.Throws<VimException>(() => new SegmentationData(config))!;
        Assert.That(e.Message, Does.StartWith($"data.train_split: split 'more' not found: {Path.Combine(ade, "annotations", "more")} does not exist"));
    }

    /// <summary>
    /// The one-full-batch check counts what the loader draws from: 8 + 4 images, 2 processes of batch 7 have 6 each
    /// (refused); with data.train_repeat 2, 12 each.
    /// </summary>
    [Test]
    public void TheOneFullBatchCheckCountsEverySplitTimesTheRepeat()
    {
        var config = AdeWithExtraSplit();
        config.Data.BatchSize = 7;
        var e = Assert.Throws<VimException>(() => new SegmentationData(config).CheckTrainingData(new DataShard(1, 2)))!;
        Assert.That(e.Message, Is.EqualTo($"data.batch_size is 7 per process with 2 processes, but the training splits 'training' + 'extra' under data.root " +
            $"{config.Data.Root} have 12 image(s) (6 per process): not one full batch per epoch; lower data.batch_size or add training images"));
        config.Data.BatchSize = 13;
        config.Data.TrainRepeat = 2;
        e = Assert.Throws<VimException>(() => new SegmentationData(config).CheckTrainingData(new DataShard(1, 2)))!;
        Assert.That(e.Message, Does.Contain("have 12 image(s) (× data.train_repeat 2 = 24 samples) (12 per process)"));
        config.Data.BatchSize = 7;
        var data = new SegmentationData(config);
        Assert.DoesNotThrow(() => data.CheckTrainingData(new DataShard(1, 2)));
        Assert.That(data.TrainingLoader(0, new DataShard(1, 2)).BatchesPerEpoch, Is.EqualTo(1), "24 samples make one global batch of 2 × 7 (drop_last)");
    }

    /// <summary>
    /// Two processes of batch 2 read, each iteration, the samples one process of batch 4 reads, over the concatenated
    /// splits repeated twice (the same images, each augmented with the same (seed, epoch, index) draws), into the second epoch.
    /// </summary>
    [Test]
    public void TwoShardsReadTheGlobalBatchOfOneProcessOverTheSplits()
    {
        var config = AdeWithExtraSplit();
        config.Data.TrainRepeat = 2;
        config.Data.BatchSize = 4;
        var whole = new SegmentationData(config).TrainingLoader(3, DataShard.Whole).Samples(0, endless: true);
        config.Data.BatchSize = 2;
        var ranks = Enumerable.Range(0, 2).Select(rank => new SegmentationData(config).TrainingLoader(3, new DataShard(rank, 2)).Samples(0, endless: true)).ToArray();
        static string Key(DataSample sample) => $"{sample.FilePath} {string.Join(",", sample.NormalizedImage!.Take(64))}";
        using var single = whole.GetEnumerator();
        using var first = ranks[0].GetEnumerator();
        using var second = ranks[1].GetEnumerator();
        var read = new HashSet<string>();
        for (int step = 0; step < 8; step++)
        {
            var expected = Enumerable.Range(0, 4).Select(_ => { Assert.That(single.MoveNext()); return Key(single.Current); }).Order().ToList();
            var shards = Enumerable.Range(0, 2).SelectMany(_ => new[] { first, second }.Select(e => { Assert.That(e.MoveNext()); return Key(e.Current); })).Order().ToList();
            Assert.That(shards, Is.EqualTo(expected), $"iteration {step}");
            read.UnionWith(expected.Select(key => key.Split(' ')[0]));
        }
        Assert.That(read.Select(Path.GetFileNameWithoutExtension), Is.SupersetOf(Stems(Path.Combine(config.Data.Root, "images", "extra"))),
            "the second split is read too");
    }

    /// <summary>
    /// A run on [training, extra] (8 + 4 images, batch 2: 6 iterations an epoch) resumed from its checkpoint of
    /// iteration 4, at sample 8 of epoch 0, ends with the weights of the uninterrupted run after 8 iterations, bit for bit.
    /// </summary>
    [Test]
    public void ATrainingRunOnTwoSplitsResumesMidEpochBitForBit()
    {
        var config = AdeWithExtraSplit();
        var resumed = StraightAndResumedRuns(config, _files,
            fromCheckpoint => new SegmentationTask(config, TextWriter.Null, SegmentationTaskTests.TinyModel, weightsFromCheckpoint: fromCheckpoint));
        Assert.That(resumed.PositionAtResume, Is.EqualTo("0/8"), "4 iterations × 2 of the epoch's 12 samples");
        Assert.That(resumed.Resumed, Is.EqualTo(resumed.Straight), "bit for bit the uninterrupted run's weights");
        Assert.That(resumed.PositionAtEnd, Is.EqualTo("1/4"), "epoch 0 ended after 6 iterations");
    }

    /// <summary>
    /// Trains <paramref name="config"/> on one thread for 8 iterations with a checkpoint every 4 (a task from
    /// <paramref name="build"/>(false)), then a fresh task (<paramref name="build"/>(true)), whose weights must differ,
    /// from the checkpoint of iteration 4 to iteration 8 in another work dir. Returns both runs' final weights and the data
    /// position ("epoch/index in epoch") of the checkpoints of iterations 4 and 8 (the resumed run's).
    /// </summary>
    internal static (float[] Straight, float[] Resumed, string PositionAtResume, string PositionAtEnd) StraightAndResumedRuns<TTask>(
        ExperimentConfig config, DataTestFiles files, Func<bool, TTask> build) where TTask : ITrainingTask<Batch>
    {
        set_num_threads(1);
        config.Schedule = new ScheduleConfig { MaxIters = 8, WarmupIters = 2 };
        config.Train = new TrainConfig { EvalInterval = 100, CheckpointInterval = 4, LogInterval = 4, KeepLast = 2 };
        static float[] Weights(TTask task) => task.Model.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
        static string Position(string checkpoint)
        {
            using var file = CheckpointFile.Load(checkpoint);
            return file.Metadata["data_epoch"] + "/" + file.Metadata["data_index"];
        }
        var straightDir = files.PathOf("straight");
        float[] straight;
        using (var task = build(false))
        {
            Assert.That(new Trainer<Batch>(task, config, straightDir, "cfg", TextWriter.Null).Run(null).Iteration, Is.EqualTo(8));
            straight = Weights(task);
        }
        var checkpoint = Path.Combine(straightDir, "iter_0000004.safetensors");
        var resumedDir = Directory.CreateDirectory(files.PathOf("resumed")).FullName;
        File.Copy(checkpoint, Path.Combine(resumedDir, Path.GetFileName(checkpoint)));
        using var resumed = build(true);
        Assert.That(Weights(resumed), Is.Not.EqualTo(straight), "the resumed task starts from other weights");
        var result = new Trainer<Batch>(resumed, config, resumedDir, "cfg", TextWriter.Null).Run(Path.Combine(resumedDir, Path.GetFileName(checkpoint)));
        Assert.That(result.Iteration, Is.EqualTo(8));
        return (straight, Weights(resumed), Position(checkpoint), Position(Path.Combine(resumedDir, "iter_0000008.safetensors")));
    }

    /// <summary>
    /// Three classes; split a: one 8×8 image all class 0, split b: two all class 2; validation: one image, left half class
    /// 0, right half class 2. Over a alone the most frequent class is 0, over [a, b] class 2 (128 pixels against 64), whose
    /// constant prediction has IoU 32/64 for class 2 and 0 for class 0 (class 1 neither labelled nor predicted): mIoU 0.25.
    /// </summary>
    [Test]
    public void TheSegmentationBaselineCountsClassesOverEveryListedSplit()
    {
        void Image(string split, string stem, Func<int, int, byte> raw)
        {
            _files.WriteRgb(Path.Combine("ade", "images", split, stem + ".jpg"), 8, 8, (_, _) => ((byte)90, (byte)90, (byte)90));
            _files.WriteGray(Path.Combine("ade", "annotations", split, stem + ".png"), 8, 8, raw);
        }
        // reduce_zero_label: raw 1 is class 0, raw 3 class 2.
        Image("a", "a1", (_, _) => 1);
        Image("b", "b1", (_, _) => 3);
        Image("b", "b2", (_, _) => 3);
        Image("validation", "v1", (_, x) => x < 4 ? (byte)1 : (byte)3);
        _files.WriteText(Path.Combine("ade", "class_names.txt"), "floor\nwall\nsky\n");
        var config = new ExperimentConfig
        {
            Task = TaskKind.Segmentation,
            Data = new DataConfig { Type = "ade20k", Root = _files.PathOf("ade"), TrainSplits = ["a"], CropSize = [8, 8], Scale = [8, 8], BatchSize = 1, NumWorkers = 0 },
            Model = new ModelConfig { NumClasses = 3 },
        };
        (int, double) Baseline()
        {
            using var task = new SegmentationTask(config, TextWriter.Null, () => SegmentationTaskTests.TinyModel(3));
            var (classIndex, result) = task.ConstantPredictorBaseline();
            return (classIndex, result.MIoU);
        }
        Assert.That(Baseline(), Is.EqualTo((0, 0.25)), "class 0 alone: IoU 32/64 for class 0, 0 for class 2");
        config.Data.TrainSplits = ["a", "b"];
        Assert.That(Baseline(), Is.EqualTo((2, 0.25)));
        config.Data.TrainRepeat = 3;
        Assert.That(Baseline(), Is.EqualTo((2, 0.25)), "a repeat weighs every split alike");
    }

    /// <summary>
    /// `vim data browse --split train` over [training, extra] with batch 2: one epoch (6 batches, 12 drawings) draws every
    /// image of both splits once.
    /// </summary>
    [Test]
    public void DataBrowseDrawsFromTheConcatenatedSplits()
    {
        var config = AdeWithExtraSplit();
        var outDir = _files.PathOf("browse");
        var written = DataBrowseCommand.Browse(config, training: true, count: 12, epoch: 0, outDir, TextWriter.Null);
        var drawn = written.Select(path => Path.GetFileNameWithoutExtension(path)[..^3]).Order(StringComparer.Ordinal).ToArray();
        var root = config.Data.Root;
        var expected = Stems(Path.Combine(root, "images", "training")).Concat(Stems(Path.Combine(root, "images", "extra"))).Order(StringComparer.Ordinal).ToArray();
        Assert.That(drawn, Is.EqualTo(expected));
        Assert.That(expected.Count(stem => stem.StartsWith("extra_", StringComparison.Ordinal)), Is.EqualTo(4));
    }
}
