using System.Text.Json.Nodes;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Tests.Detection;
using Vim.Tools.Commands;

namespace Vim.Tests.Data;

/// <summary>
/// data.class_balanced_thr (MMDetection's ClassBalancedDataset): repeat factors worked out by hand on a tiny COCO file,
/// the epoch composed with data.train_repeat and with two splits, the loader, shards, `vim data browse` and a resumed
/// training run over it, and the refusals.
/// </summary>
public class ClassBalancedSourceTests
{
    // COCO's ids for the three categories, so the class indices (0, 1, 2) differ from the category ids.
    private const long Person = 1, Dog = 18, Zebra = 24;

    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>An annotation of one image: its category and whether it is a crowd region.</summary>
    private readonly record struct Annotation(long Category, bool Crowd = false);

    /// <summary>
    /// Writes split <paramref name="split"/> under &lt;files&gt;/coco in COCO's layout: one 64² PNG per entry of
    /// <paramref name="images"/> (named &lt;split&gt;_&lt;k&gt;.png, each its own colour), each annotation a 16² square
    /// polygon at its own place.
    /// </summary>
    private void WriteSplit(string split, params Annotation[][] images)
    {
        var imageList = new JsonArray();
        var annotations = new JsonArray();
        for (int k = 0; k < images.Length; k++)
        {
            var name = $"{split}_{k + 1}.png";
            byte shade = (byte)(30 + 20 * k);
            _files.WriteRgb(Path.Combine("coco", split, name), 64, 64, (y, x) => (shade, (byte)(4 * x), (byte)(4 * y)));
            imageList.Add(new JsonObject { ["id"] = k + 1, ["file_name"] = name, ["width"] = 64, ["height"] = 64 });
            for (int a = 0; a < images[k].Length; a++)
            {
                double x0 = 4 + 20 * a, y0 = 8;
                annotations.Add(new JsonObject
                {
                    ["id"] = annotations.Count + 1, ["image_id"] = k + 1, ["category_id"] = images[k][a].Category,
                    ["bbox"] = new JsonArray(x0, y0, 16, 16), ["area"] = 256, ["iscrowd"] = images[k][a].Crowd ? 1 : 0,
                    ["segmentation"] = new JsonArray(new JsonArray(x0, y0, x0 + 16, y0, x0 + 16, y0 + 16, x0, y0 + 16)),
                });
            }
        }
        var categories = new JsonArray(
            new JsonObject { ["id"] = Person, ["name"] = "person" }, new JsonObject { ["id"] = Dog, ["name"] = "dog" },
            new JsonObject { ["id"] = Zebra, ["name"] = "zebra" });
        _files.WriteText(Path.Combine("coco", "annotations", $"instances_{split}.json"),
            new JsonObject { ["images"] = imageList, ["annotations"] = annotations, ["categories"] = categories }.ToJsonString());
    }

    /// <summary>
    /// Split "a": nine images, of which training keeps seven (a_8 has no annotation, a_9 only a crowd region, which
    /// detectron2 drops too; mmdet's filter_empty_gt, data.filter_cfg, would keep a_9):
    /// a_1 person · a_2 person, person · a_3 person · a_4 person · a_5 person, dog · a_6 dog · a_7 person, zebra (crowd).
    /// </summary>
    private void WriteSplitA() => WriteSplit("a",
        [new(Person)], [new(Person), new(Person)], [new(Person)], [new(Person)], [new(Person), new(Dog)], [new(Dog)],
        [new(Person), new(Zebra, Crowd: true)], [], [new(Person, Crowd: true)]);

    /// <summary>Split "b": b_1 zebra · b_2 zebra · b_3 person.</summary>
    private void WriteSplitB() => WriteSplit("b", [new(Zebra)], [new(Zebra)], [new(Person)]);

    private ExperimentConfig Config(double? threshold, int repeat = 1, int batch = 1, params string[] splits) => new()
    {
        Task = TaskKind.Detection,
        Data = new DataConfig
        {
            Type = "coco", Root = _files.PathOf("coco"), TrainSplits = [.. splits.DefaultIfEmpty("a")], ValSplit = "a", CropSize = [64, 64],
            BatchSize = batch, NumWorkers = 0, TrainRepeat = repeat, ClassBalancedThr = threshold,
        },
        Model = new ModelConfig { NumClasses = 3 },
    };

    private static ClassBalancedSource Balanced(DetectionData data) => (ClassBalancedSource)data.ClassBalancedTrainSet;

    /// <summary>
    /// Threshold 0.6 over split a's seven training images. Frequencies: person in a_1–a_5 and a_7, f = 6/7; dog in a_5,
    /// a_6, f = 2/7; zebra in a_7 (as a crowd region, which counts, as in mmdet and detectron2), f = 1/7.
    /// r(person) = max(1, √(0.6 · 7/6 = 0.7)) = 1; r(dog) = √(0.6 · 7/2 = 2.1) ≈ 1.449; r(zebra) = √(0.6 · 7 = 4.2) ≈ 2.049.
    /// Images: a_1–a_4 1 (one copy each; a_2's two persons count once), a_5 max(1, 1.449) → 2 copies, a_6 1.449 → 2,
    /// a_7 max(1, 2.049) → 3: 1 + 1 + 1 + 1 + 2 + 2 + 3 = 11 samples, each image's copies in a row.
    /// </summary>
    [Test]
    public void RepeatFactorsOfATinyCocoSplitAreTheHandComputedOnes()
    {
        WriteSplitA();
        var data = new DetectionData(Config(0.6));
        Assert.That(data.TrainSet.Count, Is.EqualTo(7), "a_8 (no annotation) and a_9 (a crowd region alone) are not trained on");
        var balanced = Balanced(data);
        Assert.That(balanced.Threshold, Is.EqualTo(0.6));
        Assert.That(balanced.ClassFrequencies, Is.EquivalentTo(new Dictionary<int, double> { [0] = 6.0 / 7, [1] = 2.0 / 7, [2] = 1.0 / 7 }));
        Assert.That(balanced.ClassRepeatFactors[0], Is.EqualTo(1.0));
        Assert.That(balanced.ClassRepeatFactors[1], Is.EqualTo(Math.Sqrt(2.1)).Within(1e-12));
        Assert.That(balanced.ClassRepeatFactors[2], Is.EqualTo(Math.Sqrt(4.2)).Within(1e-12));
        double[] expectedImageFactors = [1, 1, 1, 1, Math.Sqrt(2.1), Math.Sqrt(2.1), Math.Sqrt(4.2)];
        for (int i = 0; i < 7; i++)
            Assert.That(balanced.ImageRepeatFactor(i), Is.EqualTo(expectedImageFactors[i]).Within(1e-12), $"r(a_{i + 1})");
        Assert.That(Enumerable.Range(0, 7).Select(balanced.Copies), Is.EqualTo(new[] { 1, 1, 1, 1, 2, 2, 3 }));
        Assert.That(balanced.Count, Is.EqualTo(11));
        Assert.That(Enumerable.Range(0, 11).Select(balanced.SourceIndex), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6 }));
        Assert.That(Enumerable.Range(0, 11).Select(i => Path.GetFileName(balanced.Load(i).FilePath)),
            Is.EqualTo(new[] { "a_1.png", "a_2.png", "a_3.png", "a_4.png", "a_5.png", "a_5.png", "a_6.png", "a_6.png", "a_7.png", "a_7.png", "a_7.png" }));
        Assert.That(() => balanced.SourceIndex(11), Throws.InstanceOf<ArgumentOutOfRangeException>());

        Assert.That(data.TrainingSamples.Count, Is.EqualTo(11));
        Assert.That(data.Summary, Is.EqualTo("7 training images (2 more filtered out: 2 without a usable non-crowd object), class-balanced to 11 per epoch (data.class_balanced_thr 0.6) and 9 validation images, 3 classes"));
        var off = new DetectionData(Config(null));
        Assert.That(off.ClassBalancedTrainSet, Is.SameAs(off.TrainSet), "unset: the concatenation itself");
        Assert.That(off.TrainingSamples.Count, Is.EqualTo(7));
    }

    /// <summary>
    /// The wrapper on numbered samples with their classes given: eight images, class 5 in images 0–3, class 9 in image 4,
    /// image 7 without any. Threshold 0.5: f(5) = 4/8, r = max(1, √1) = 1; f(9) = 1/8, r = √(0.5 / 0.125) = √4 = 2 exactly
    /// (powers of two, no rounding), so image 4 has ⌈2⌉ = 2 copies, not 3; the image without classes counts in the
    /// denominator and has one copy (mmdet's factor 1): 1 · 7 + 2 = 9 samples.
    /// </summary>
    [Test]
    public void AnExactFactorIsNotRoundedUpAndAnImageWithoutClassesKeepsOneCopy()
    {
        int[][] classes = [[5], [5, 5], [5], [5], [9], [], [], []];
        var balanced = new ClassBalancedSource(new NumberedSource(8), i => classes[i], 0.5);
        Assert.That(balanced.ClassFrequencies, Is.EquivalentTo(new Dictionary<int, double> { [5] = 0.5, [9] = 0.125 }));
        Assert.That(balanced.ImageRepeatFactor(4), Is.EqualTo(2.0));
        Assert.That(Enumerable.Range(0, 8).Select(balanced.Copies), Is.EqualTo(new[] { 1, 1, 1, 1, 2, 1, 1, 1 }));
        Assert.That(Enumerable.Range(0, balanced.Count).Select(balanced.SourceIndex), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 4, 5, 6, 7 }));
        Assert.That(ClassBalancedSource.ClassRepeatFactor(0.001, 0.0004), Is.EqualTo(Math.Sqrt(2.5)).Within(1e-12), "LVIS-style threshold");
        Assert.That(() => new ClassBalancedSource(new NumberedSource(2), _ => [], 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => new ClassBalancedSource(new NumberedSource(2), _ => [], 1.5), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    /// <summary>
    /// data.train_repeat 2 after balancing split a (11 samples, previous test) gives 22, each image's copies twice; mmdet's
    /// other order, ClassBalancedDataset around RepeatDataset, yields the same sequence, since a repeat leaves every class
    /// frequency as it is: 2 × [a_1 … a_4, a_5 a_5, a_6 a_6, a_7 a_7 a_7].
    /// </summary>
    [Test]
    public void WithTrainRepeatTheEpochIsTheBalancedSamplesRepeatedInEitherOrder()
    {
        WriteSplitA();
        var data = new DetectionData(Config(0.6, repeat: 2));
        int[] onePass = [0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6];
        var samples = data.TrainingSamples;
        Assert.That(samples.Count, Is.EqualTo(22));
        var balanced = Balanced(data);
        Assert.That(Enumerable.Range(0, 22).Select(i => balanced.SourceIndex(samples.SourceIndex(i))), Is.EqualTo(onePass.Concat(onePass)));

        var repeatedFirst = new ClassBalancedSource(new RepeatedSource(data.TrainSet, 2), i => data.TrainSet.Parts[0].ClassesIn(i % 7), 0.6);
        Assert.That(Enumerable.Range(0, repeatedFirst.Count).Select(i => repeatedFirst.SourceIndex(i) % 7), Is.EqualTo(onePass.Concat(onePass)));
        Assert.That(data.Summary, Does.StartWith("7 training images (2 more filtered out: 2 without a usable non-crowd object), class-balanced to 11 (data.class_balanced_thr 0.6), each visited 2 times an epoch " +
            "(data.train_repeat): 22 samples per epoch and "));
    }

    /// <summary>
    /// [a, b] is balanced over both splits' ten images (mmdet's ClassBalancedDataset around the ConcatDataset), not each
    /// split alone: person in a_1–a_5, a_7, b_3, f = 7/10, r = max(1, √(0.6/0.7)) = 1; dog in a_5, a_6, f = 2/10,
    /// r = √3 ≈ 1.732; zebra in a_7, b_1, b_2, f = 3/10, r = √2 ≈ 1.414. Copies: a_1–a_4 1, a_5 2, a_6 2, a_7 2 (3 over a
    /// alone), b_1 2, b_2 2, b_3 1 (2 over b alone, where person is 1 image in 3): 15 samples; × data.train_repeat 3 = 45.
    /// </summary>
    [Test]
    public void TwoSplitsAreBalancedOverTheirUnion()
    {
        WriteSplitA();
        WriteSplitB();
        var data = new DetectionData(Config(0.6, splits: ["a", "b"]));
        var balanced = Balanced(data);
        Assert.That(balanced.ClassFrequencies[0], Is.EqualTo(0.7));
        Assert.That(balanced.ClassFrequencies[1], Is.EqualTo(0.2));
        Assert.That(balanced.ClassFrequencies[2], Is.EqualTo(0.3));
        Assert.That(Enumerable.Range(0, 10).Select(balanced.Copies), Is.EqualTo(new[] { 1, 1, 1, 1, 2, 2, 2, 2, 2, 1 }));
        Assert.That(balanced.Count, Is.EqualTo(15));
        Assert.That(Path.GetFileName(balanced.Load(12).FilePath), Is.EqualTo("b_2.png"), "samples 0–9 are a's, 10–11 b_1's");
        Assert.That(new DetectionData(Config(0.6, repeat: 3, splits: ["a", "b"])).TrainingSamples.Count, Is.EqualTo(45));
    }

    /// <summary>
    /// schedule.max_epochs counts the loader's epoch: split a balanced at 0.6 (11 samples), × data.train_repeat 2 = 22
    /// samples, in global batches of 2 per process: 11 iterations an epoch on one process, ⌊22 / (2 × 2)⌋ = 5 on two (drop_last);
    /// 4 epochs with the milestone at epoch 3 are 20 iterations with the milestone at 15 on two processes, 44 and 33 on one.
    /// </summary>
    [Test]
    public void AnEpochCountedScheduleCountsTheBalancedRepeatedSamplesPerProcess()
    {
        WriteSplitA();
        var config = Config(0.6, repeat: 2, batch: 2);
        config.Schedule = new ScheduleConfig { MaxEpochs = 4, Policy = LrPolicy.Multistep, Milestones = [3] };
        config.Train = new TrainConfig { EvalInterval = 1, CheckpointInterval = 2 };
        Assert.That(TrainingEpochs.IterationsPerEpoch(config, processes: 1), Is.EqualTo(11));
        Assert.That(TrainingEpochs.IterationsPerEpoch(config, processes: 2), Is.EqualTo(5));
        var two = TrainingEpochs.Resolve(config, processes: 2);
        Assert.That((two.MaxIters, two.Config.Schedule.Milestones.Single(), two.Config.Train.EvalInterval, two.Config.Train.CheckpointInterval),
            Is.EqualTo((20, 15, 5, 10)));
        var one = TrainingEpochs.Resolve(config, processes: 1);
        Assert.That((one.MaxIters, one.Config.Schedule.Milestones.Single()), Is.EqualTo((44, 33)));

        config.Data.Root = _files.PathOf("nowhere");
        Assert.That(() => TrainingEpochs.Resolve(config, processes: 1), Throws.TypeOf<VimException>().With.Message.StartsWith(
            $"schedule.max_epochs counts epochs of the training data, so the data under data.root ({_files.PathOf("nowhere")}) must be readable"));
    }

    /// <summary>
    /// One epoch of the training loader (batch 1, split a at 0.6, 11 samples) draws each image as many times as it has
    /// copies, in an order fixed by the seed; the copies of a_7 are augmented with their own (seed, epoch, index) draws.
    /// </summary>
    [Test]
    public void AnEpochDrawsEachImageItsCopiesInAnOrderFixedByTheSeed()
    {
        WriteSplitA();
        var data = new DetectionData(Config(0.6));
        List<DataSample> Epoch(int seed) => data.TrainingLoader(seed, DataShard.Whole).Samples(0, endless: false).ToList();
        var epoch = Epoch(5);
        Assert.That(epoch.GroupBy(sample => Path.GetFileName(sample.FilePath)).ToDictionary(g => g.Key, g => g.Count()), Is.EquivalentTo(
            new Dictionary<string, int> { ["a_1.png"] = 1, ["a_2.png"] = 1, ["a_3.png"] = 1, ["a_4.png"] = 1, ["a_5.png"] = 2, ["a_6.png"] = 2, ["a_7.png"] = 3 }));
        Assert.That(Epoch(5).Select(Key), Is.EqualTo(epoch.Select(Key)), "the same seed, the same samples");
        Assert.That(Epoch(6).Select(sample => sample.FilePath), Is.Not.EqualTo(epoch.Select(sample => sample.FilePath)), "another seed, another order");
        Assert.That(epoch.Where(sample => sample.FilePath.EndsWith("a_7.png", StringComparison.Ordinal)).Select(Key).Distinct().Count(), Is.EqualTo(3),
            "a_7's three copies are augmented differently");
    }

    /// <summary>What a sample fed to the model is: its file and a digest of its normalised image (which the augmentation changes).</summary>
    private static string Key(DataSample sample) =>
        $"{sample.FilePath} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(sample.NormalizedImage.AsSpan())))}";

    /// <summary>
    /// Two processes of batch 1 read, each iteration, the samples one process of batch 2 reads over the balanced and
    /// repeated [a, b] (15 × 2 = 30 samples), into the second epoch.
    /// </summary>
    [Test]
    public void TwoShardsReadTheGlobalBatchOfOneProcess()
    {
        WriteSplitA();
        WriteSplitB();
        var whole = new DetectionData(Config(0.6, repeat: 2, batch: 2, splits: ["a", "b"])).TrainingLoader(3, DataShard.Whole).Samples(0, endless: true);
        var ranks = Enumerable.Range(0, 2).Select(rank =>
            new DetectionData(Config(0.6, repeat: 2, batch: 1, splits: ["a", "b"])).TrainingLoader(3, new DataShard(rank, 2)).Samples(0, endless: true)).ToArray();
        using var single = whole.GetEnumerator();
        using var first = ranks[0].GetEnumerator();
        using var second = ranks[1].GetEnumerator();
        for (int step = 0; step < 18; step++)
        {
            var expected = Enumerable.Range(0, 2).Select(_ => { Assert.That(single.MoveNext()); return Key(single.Current); }).Order().ToList();
            var shards = new[] { first, second }.Select(e => { Assert.That(e.MoveNext()); return Key(e.Current); }).Order().ToList();
            Assert.That(shards, Is.EqualTo(expected), $"iteration {step} (15 an epoch)");
        }
    }

    /// <summary>`vim data browse --split train` draws from the balanced training samples: one epoch, 11 drawings, a_7 three times.</summary>
    [Test]
    public void DataBrowseDrawsTheBalancedSamples()
    {
        WriteSplitA();
        var written = DataBrowseCommand.Browse(Config(0.6), training: true, count: 11, epoch: 0, _files.PathOf("browse"), TextWriter.Null);
        var stems = written.Select(path => Path.GetFileNameWithoutExtension(path)[..^3]).ToList();
        Assert.That(stems.GroupBy(stem => stem).ToDictionary(g => g.Key, g => g.Count()), Is.EquivalentTo(
            new Dictionary<string, int> { ["a_1"] = 1, ["a_2"] = 1, ["a_3"] = 1, ["a_4"] = 1, ["a_5"] = 2, ["a_6"] = 2, ["a_7"] = 3 }));
    }

    /// <summary>
    /// A tiny detector's run on the demo COCO splits [train, val], class-balanced at 1 (every class below all images is
    /// repeated) and repeated twice, resumed from its checkpoint of iteration 4 (sample 8 of epoch 0), ends with the
    /// uninterrupted run's weights after 8 iterations, bit for bit.
    /// </summary>
    [Test]
    public void ATrainingRunResumesMidEpochBitForBit()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 6, valImages: 4, "train", "val");
        config.Data.ClassBalancedThr = 1;
        config.Data.TrainRepeat = 2;
        var data = new DetectionData(config);
        Assert.That(data.TrainingSamples.Count, Is.GreaterThan(2 * data.TrainSet.Count), "balancing adds copies");
        Assert.That(data.TrainingSamples.Count, Is.GreaterThanOrEqualTo(20), "the 8 iterations of 2 stay within epoch 0");
        var resumed = TrainSplitListTests.StraightAndResumedRuns(config, _files,
            fromCheckpoint => new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector, weightsFromCheckpoint: fromCheckpoint));
        Assert.That(resumed.PositionAtResume, Is.EqualTo("0/8"));
        Assert.That(resumed.Resumed, Is.EqualTo(resumed.Straight), "bit for bit the uninterrupted run's weights");
        Assert.That(resumed.PositionAtEnd, Is.EqualTo("0/16"));
    }

    [TestCase(0.0, "0")]
    [TestCase(-0.1, "-0.1")]
    [TestCase(1.5, "1.5")]
    [TestCase(double.NaN, "NaN")]
    public void AThresholdOutsideZeroToOneIsRefusedByKey(double threshold, string written)
    {
        WriteSplitA();
        var e = Assert.Throws<VimException>(() => new DetectionData(Config(threshold)))!;
        Assert.That(e.Message, Is.EqualTo($"data.class_balanced_thr must be within (0, 1], the fraction of training images below which a class's images are " +
            $"repeated (mmdet's oversample_thr, e.g. 0.001 for LVIS), got {written}; null leaves class balancing off"));
        Assert.DoesNotThrow(() => new DetectionData(Config(1.0)), "1 is allowed");
    }

    /// <summary>
    /// In a config file: a segmentation config may not set it (the key named with its file and line); a detection config
    /// reads it, and `--set data.class_balanced_thr=` turns it off.
    /// </summary>
    [Test]
    public void ASegmentationConfigIsRefusedTheKeyAndADetectionConfigReadsIt()
    {
        var segmentation = _files.WriteText("seg.yaml", "task: segmentation\ndata:\n  class_balanced_thr: 0.001\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation))!;
        Assert.That(e.Message, Is.EqualTo($"{segmentation}:3: data.class_balanced_thr is a detection setting, but the config's task is segmentation, " +
            "which never reads it; remove it (or set task)"));
        Assert.That(ExperimentConfig.Load(segmentation, ["data.class_balanced_thr="]).Config.Data.ClassBalancedThr, Is.Null);

        var detection = _files.WriteText("det.yaml", "task: detection\ndata:\n  class_balanced_thr: 0.001\n");
        Assert.That(ExperimentConfig.Load(detection).Config.Data.ClassBalancedThr, Is.EqualTo(0.001));
        Assert.That(ExperimentConfig.Load(detection, ["data.class_balanced_thr="]).Config.Data.ClassBalancedThr, Is.Null);
        Assert.That(new ExperimentConfig().Data.ClassBalancedThr, Is.Null, "off unless set");
    }

    /// <summary>The one-full-batch check counts the balanced samples: 7 images make 11, and × data.train_repeat 2, 22.</summary>
    [Test]
    public void TheOneFullBatchCheckCountsTheBalancedSamples()
    {
        WriteSplitA();
        var root = _files.PathOf("coco");
        var e = Assert.Throws<VimException>(() => new DetectionData(Config(0.6, batch: 12)).CheckTrainingData(DataShard.Whole))!;
        Assert.That(e.Message, Is.EqualTo($"data.batch_size is 12, but the training split 'a' under data.root {root} has 7 image(s) " +
            "(class-balanced by data.class_balanced_thr 0.6 to 11 samples): not one full batch per epoch; lower data.batch_size or add training images"));
        e = Assert.Throws<VimException>(() => new DetectionData(Config(0.6, repeat: 2, batch: 12)).CheckTrainingData(new DataShard(0, 2)))!;
        Assert.That(e.Message, Does.Contain("has 7 image(s) (class-balanced by data.class_balanced_thr 0.6 to 11, × data.train_repeat 2 = 22 samples) (11 per process)"));
        Assert.DoesNotThrow(() => new DetectionData(Config(0.6, batch: 11)).CheckTrainingData(DataShard.Whole), "11 balanced samples fill a batch of 11");
        Assert.Throws<VimException>(() => new DetectionData(Config(null, batch: 11)).CheckTrainingData(DataShard.Whole), "7 images alone do not");
    }

    /// <summary>Samples that say which index they are (file path "n/INDEX").</summary>
    private sealed class NumberedSource(int count) : ISampleSource
    {
        public int Count => count;

        public DataSample Load(int index) => new(index, $"n/{index}", [0, 0, 0], 1, 1);
    }
}
