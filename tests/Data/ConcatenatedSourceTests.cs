using NUnit.Framework;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Detection;

namespace Vim.Tests.Data;

/// <summary>
/// The dataset wrappers behind data.train_split lists and data.train_repeat (MMEngine's ConcatDataset and RepeatDataset):
/// index arithmetic worked out by hand on numbered sources, and concatenations of real demo splits compared sample by
/// sample with each split read on its own.
/// </summary>
public class ConcatenatedSourceTests
{
    /// <summary>Samples that say which source and index they are: file path "NAME/INDEX", image id 1000 + index.</summary>
    private sealed class NumberedSource(string name, int count) : ISampleSource
    {
        public int Count => count;

        public DataSample Load(int index)
        {
            Assert.That(index, Is.InRange(0, count - 1), $"{name}: index within the source");
            return new DataSample(1000 + index, $"{name}/{index}", [(byte)index, 0, 0], 1, 1);
        }
    }

    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    [Test]
    public void PartsFollowEachOtherInOrderAndEmptyPartsArePassedOver()
    {
        var concatenation = new ConcatenatedSource<NumberedSource>([new("a", 2), new("empty", 0), new("b", 3), new("c", 1)]);
        Assert.That(concatenation.Count, Is.EqualTo(6));
        string[] expected = ["a/0", "a/1", "b/0", "b/1", "b/2", "c/0"];
        Assert.That(Enumerable.Range(0, 6).Select(i => concatenation.Load(i).FilePath), Is.EqualTo(expected));
        Assert.That(Enumerable.Range(0, 6).Select(concatenation.Locate), Is.EqualTo(new[] { (0, 0), (0, 1), (2, 0), (2, 1), (2, 2), (3, 0) }));
        // Ids are the parts' own: "a/0" and "b/0" are both image 1000.
        Assert.That(concatenation.Load(2).ImageId, Is.EqualTo(concatenation.Load(0).ImageId));
        Assert.That(() => concatenation.Load(6), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => concatenation.Locate(-1), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => new ConcatenatedSource<NumberedSource>([]), Throws.ArgumentException);
    }

    [Test]
    public void ARepeatHoldsCountTimesNSamplesAndSampleIIsTheSourcesSampleIModCount()
    {
        var repeated = new RepeatedSource(new NumberedSource("a", 3), 4);
        Assert.That(repeated.Count, Is.EqualTo(12));
        Assert.That(Enumerable.Range(0, 12).Select(i => repeated.Load(i).FilePath),
            Is.EqualTo(new[] { "a/0", "a/1", "a/2", "a/0", "a/1", "a/2", "a/0", "a/1", "a/2", "a/0", "a/1", "a/2" }));
        Assert.That(() => repeated.Load(12), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => new RepeatedSource(new NumberedSource("a", 3), 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => new RepeatedSource(new NumberedSource("a", 3), int.MaxValue / 2), Throws.InstanceOf<ArgumentOutOfRangeException>(),
            "3 × 2^30 samples overflow the int indices");
    }

    /// <summary>
    /// The demo COCO splits train and val number their images from 1 and name their files alike (in different folders): a
    /// detection config listing both trains on each split's own samples, and the training loader's epoch reads every
    /// image of both once, although their ids collide.
    /// </summary>
    [Test]
    public void TwoDemoCocoSplitsConcatenateIntoEachSplitsOwnSamplesWhoseIdsMayCollide()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 6, valImages: 4, "train", "val");
        var root = config.Data.Root;
        var data = new DetectionData(config);

        var alone = new[] { "train", "val" }.Select(split =>
            CocoInstanceDataset.Load(DetectionData.AnnotationFile(config.Data, split), Path.Combine(root, split), new CocoInstanceOptions())).ToArray();
        Assert.That(data.TrainSet.Parts, Has.Count.EqualTo(2));
        Assert.That(data.TrainSet.Count, Is.EqualTo(alone[0].Count + alone[1].Count));
        Assert.That(alone[1].Count, Is.GreaterThan(0));
        for (int i = 0; i < data.TrainSet.Count; i++)
        {
            var (part, j) = i < alone[0].Count ? (0, i) : (1, i - alone[0].Count);
            AssertSameSample(data.TrainSet.Load(i), alone[part].Load(j), $"sample {i} = {(part == 0 ? "train" : "val")}'s sample {j}");
        }
        Assert.That(alone[0].Images.Select(image => image.Id).Intersect(alone[1].Images.Select(image => image.Id)), Is.Not.Empty,
            "the two files reuse image ids");

        // Batch 2 over the images with objects of both splits (the demo leaves some empty): one epoch draws no image twice,
        // and draws from both folders although the files and ids are numbered alike.
        var drawn = data.TrainingLoader(7, DataShard.Whole).Samples(0, endless: false).Select(sample => sample.FilePath).ToList();
        var expected = alone.SelectMany(split => split.Images.Select(split.ImagePath)).ToList();
        Assert.That(drawn.Count, Is.EqualTo(expected.Count / 2 * 2));
        Assert.That(drawn, Is.Unique);
        Assert.That(expected, Is.SupersetOf(drawn));
        Assert.That(drawn.Count(path => path.StartsWith(Path.Combine(root, "val") + Path.DirectorySeparatorChar, StringComparison.Ordinal)),
            Is.GreaterThanOrEqualTo(alone[1].Count - 1), "at most the one image of an odd total is left out");
    }

    [Test]
    public void TwoDemoAdeSplitsConcatenateIntoEachSplitsOwnSamples()
    {
        var config = AdeOverTrainingAndValidation(repeat: 1, batch: 2);
        var root = config.Data.Root;
        var data = new SegmentationData(config);
        var alone = new[] { "training", "validation" }.Select(split => SegmentationFolderDataset.Ade20k(root, split, DemoDatasetGenerator.ClassNames)).ToArray();
        Assert.That(data.TrainSet.Count, Is.EqualTo(8));
        for (int i = 0; i < 8; i++)
        {
            var (part, j) = i < 5 ? (0, i) : (1, i - 5);
            AssertSameSample(data.TrainSet.Load(i), alone[part].Load(j), $"sample {i}");
        }
    }

    /// <summary>data.train_repeat 3 over 8 images: one epoch of the training loader is 24 samples, each image 3 times, each time augmented afresh.</summary>
    [Test]
    public void ARepeatedTrainingLoaderVisitsEveryImageNTimesAnEpoch()
    {
        var config = AdeOverTrainingAndValidation(repeat: 3, batch: 4);
        var data = new SegmentationData(config);
        Assert.That(data.TrainingSamples.Count, Is.EqualTo(24));
        var loader = data.TrainingLoader(1, DataShard.Whole);
        Assert.That(loader.BatchesPerEpoch, Is.EqualTo(6), "24 samples in batches of 4");
        var epoch = loader.Samples(0, endless: false).ToList();
        var images = data.TrainSet.Parts.SelectMany(split => split.ImagePaths).ToList();
        Assert.That(epoch.GroupBy(sample => sample.FilePath).ToDictionary(g => g.Key, g => g.Count()),
            Is.EquivalentTo(images.ToDictionary(path => path, _ => 3)));
        foreach (var copies in epoch.GroupBy(sample => sample.FilePath))
            Assert.That(copies.Select(sample => string.Join(",", sample.NormalizedImage!.Take(64))).Distinct().Count(), Is.GreaterThan(1),
                $"{copies.Key}: the copies are augmented with their own seeds");
    }

    /// <summary>Demo ADE data (5 training and 3 validation images of 48×40) with both splits listed in data.train_split.</summary>
    private ExperimentConfig AdeOverTrainingAndValidation(int repeat, int batch)
    {
        var root = _files.PathOf("ade");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = root, TrainImages = 5, ValImages = 3, Width = 48, Height = 40, Seed = 4 });
        return new ExperimentConfig
        {
            Task = TaskKind.Segmentation,
            Data = new DataConfig
            {
                Type = "ade20k", Root = root, TrainSplits = ["training", "validation"], TrainRepeat = repeat, CropSize = [32, 32], Scale = [48, 40],
                BatchSize = batch, NumWorkers = 0,
            },
            Model = new ModelConfig { NumClasses = DemoDatasetGenerator.ClassNames.Count },
        };
    }

    private static void AssertSameSample(DataSample actual, DataSample expected, string what)
    {
        Assert.That(actual.FilePath, Is.EqualTo(expected.FilePath), what);
        Assert.That(actual.ImageId, Is.EqualTo(expected.ImageId), what);
        Assert.That((actual.Height, actual.Width), Is.EqualTo((expected.Height, expected.Width)), what);
        Assert.That(actual.Image, Is.EqualTo(expected.Image), what);
        Assert.That(actual.Boxes, Is.EqualTo(expected.Boxes), what);
        Assert.That(actual.Labels, Is.EqualTo(expected.Labels), what);
        Assert.That(actual.IsCrowd, Is.EqualTo(expected.IsCrowd), what);
        Assert.That(actual.AnnotationIds, Is.EqualTo(expected.AnnotationIds), what);
        Assert.That(actual.LabelMap, Is.EqualTo(expected.LabelMap), what);
        Assert.That(actual.Masks?.Select(mask => mask.Pixels), Is.EqualTo(expected.Masks?.Select(mask => mask.Pixels)), what);
    }
}
