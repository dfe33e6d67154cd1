using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Detection;
using Vim.Tools.Commands;

namespace Vim.Tests.Detection;

/// <summary>data.mosaic and data.mixup end to end on the tiny demo COCO data (64² images): the config, the training loader, `vim data browse` and short training runs.</summary>
public class MixAugTrainingTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = DetectionTaskTests.CreateDemoRoot("vimdense-mixaug-");

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private ExperimentConfig Config(MosaicConfig? mosaic, MixUpConfig? mixUp)
    {
        var config = DetectionTaskTests.ConfigAt(_root);
        config.Data.Mosaic = mosaic;
        config.Data.MixUp = mixUp;
        return config;
    }

    [Test]
    public void SectionsReadMmdetsDefaultsAndAreRefusedForSegmentationOrBadValues()
    {
        var detection = Path.Combine(_root, "det.yaml");
        File.WriteAllText(detection, "task: detection\ndata:\n  mosaic: {}\n  mixup: {}\n");
        var data = ExperimentConfig.Load(detection).Config.Data;
        var (mosaic, mixUp) = (data.Mosaic!, data.MixUp!);
        Assert.That((mosaic.ImgScale, mosaic.CenterRatioRange, mosaic.BboxClipBorder, mosaic.PadVal, mosaic.Prob),
            Is.EqualTo((new List<int> { 640, 640 }, new List<double> { 0.5, 1.5 }, true, 114.0, 1.0)), "mmdet's Mosaic defaults");
        Assert.That((mixUp.ImgScale, mixUp.RatioRange, mixUp.FlipRatio, mixUp.PadVal, mixUp.MaxIters, mixUp.BboxClipBorder, mixUp.SkipFilter),
            Is.EqualTo((new List<int> { 640, 640 }, new List<double> { 0.5, 1.5 }, 0.5, 114.0, 15, true, true)), "mmdet's MixUp defaults");
        Assert.That(ExperimentConfig.Load(detection, ["data.mosaic=", "data.mixup="]).Config.Data.Mosaic, Is.Null);
        Assert.That((new ExperimentConfig().Data.Mosaic, new ExperimentConfig().Data.MixUp), Is.EqualTo(((MosaicConfig?)null, (MixUpConfig?)null)), "off unless set");

        foreach (var (key, value) in new[] { ("mosaic", "{prob: 0.5}"), ("mixup", "{flip_ratio: 0.2}") })
        {
            var segmentation = Path.Combine(_root, $"seg-{key}.yaml");
            File.WriteAllText(segmentation, $"task: segmentation\ndata:\n  {key}: {value}\n");
            var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation))!;
            Assert.That(e.Message, Is.EqualTo($"{segmentation}:3: data.{key} is a detection setting, but the config's task is segmentation, which never reads it; remove it (or set task)"));
        }

        var refused = Assert.Throws<VimException>(() => new DetectionData(Config(new MosaicConfig { Prob = 2 }, null)))!;
        Assert.That(refused.Message, Does.StartWith("data.mosaic.prob must be a probability in [0, 1]"));
        refused = Assert.Throws<VimException>(() => new DetectionData(Config(null, new MixUpConfig { MaxIters = 0 })))!;
        Assert.That(refused.Message, Does.StartWith("data.mixup.max_iters must be at least 1"));
    }

    /// <summary>
    /// RTMDet's CachedMosaic / CachedMixUp settings read as data.mosaic / data.mixup keys (mmdet's defaults otherwise, off
    /// unless cached: true), a cache too small for the mosaic refused by key, and the training loader mixing from the cache.
    /// </summary>
    [Test]
    public void CachedSettingsAreReadCheckedAndTrainedWith()
    {
        var file = Path.Combine(_root, "rtmdet.yaml");
        File.WriteAllText(file, "task: detection\ndata:\n  mosaic: {cached: true, max_cached_images: 20, random_pop: false}\n" +
            "  mixup: {cached: true, ratio_range: [1.0, 1.0], max_cached_images: 10, random_pop: false, prob: 0.5}\n");
        var data = ExperimentConfig.Load(file).Config.Data;
        Assert.That((data.Mosaic!.Cached, data.Mosaic.MaxCachedImages, data.Mosaic.RandomPop), Is.EqualTo((true, 20, false)));
        Assert.That((data.MixUp!.Cached, data.MixUp.MaxCachedImages, data.MixUp.RandomPop, data.MixUp.Prob), Is.EqualTo((true, 10, false, 0.5)));
        File.WriteAllText(file, "task: detection\ndata:\n  mosaic: {}\n  mixup: {}\n");
        data = ExperimentConfig.Load(file).Config.Data;
        Assert.That((data.Mosaic!.Cached, data.Mosaic.MaxCachedImages, data.Mosaic.RandomPop), Is.EqualTo((false, 40, true)), "CachedMosaic's defaults, off");
        Assert.That((data.MixUp!.Cached, data.MixUp.MaxCachedImages, data.MixUp.RandomPop, data.MixUp.Prob), Is.EqualTo((false, 20, true, 1.0)), "CachedMixUp's defaults, off");

        var refused = Assert.Throws<VimException>(() => new DetectionData(Config(new MosaicConfig { Cached = true, MaxCachedImages = 4 }, null)))!;
        Assert.That(refused.Message, Does.StartWith("data.mosaic.max_cached_images must be at least 5 with cached: true"));

        var config = Config(new MosaicConfig { ImgScale = [32, 32], Cached = true, MaxCachedImages = 5 }, new MixUpConfig { ImgScale = [64, 64], Cached = true, MaxCachedImages = 2 });
        var detection = new DetectionData(config);
        var samples = detection.TrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(0, endless: false).ToList();
        Assert.That(samples, Has.Count.GreaterThan(4));
        Assert.That(samples.Skip(4).Select(s => (s.Height, s.Width)), Has.All.EqualTo((64, 64)), "mosaics from the fifth sample of the epoch on, the cache holding 5");
        Assert.That(detection.Summary, Does.Contain("each in a mosaic with three of the last 5 (data.mosaic, cached), each blended with one of the last 2 (data.mixup, cached)"));
    }

    /// <summary>
    /// The training loader (and so `vim data browse`, which reads it) makes 64² mosaics of 32² tiles, blended with another
    /// image, carrying objects of several training images, every one an annotation of the training file.
    /// </summary>
    [Test]
    public void TheTrainingLoaderAndBrowseShowMosaicsWithObjectsOfSeveralImages()
    {
        var config = Config(new MosaicConfig { ImgScale = [32, 32] }, new MixUpConfig { ImgScale = [64, 64] });
        var data = new DetectionData(config);
        var imageOf = data.TrainSet.Parts[0].Coco.Annotations.ToDictionary(a => a.Id, a => a.ImageId);
        var samples = data.TrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(0, endless: true).Take(6).ToList();
        Assert.That(samples.SelectMany(s => s.AnnotationIds), Has.All.Matches<long>(imageOf.ContainsKey));
        Assert.That(samples.Select(s => (s.Height, s.Width)), Has.All.EqualTo((64, 64)));
        Assert.That(samples.Count(s => s.AnnotationIds.Select(id => imageOf[id]).Distinct().Count() >= 2), Is.GreaterThan(0), "objects of several images");
        Assert.That(data.Summary, Does.Contain(" training images, each in a mosaic with three others (data.mosaic), each blended with another (data.mixup) and 3 validation images"));

        var drawings = DataBrowseCommand.Browse(config, training: true, count: 2, epoch: 0, Path.Combine(_root, "browse"), TextWriter.Null);
        Assert.That(drawings.Select(File.Exists), Has.All.True);
    }

    [TestCase("mosaic")]
    [TestCase("mixup")]
    public void ADetectorTrainsWithIt(string which)
    {
        var config = which == "mosaic" ? Config(new MosaicConfig { ImgScale = [32, 32] }, null) : Config(null, new MixUpConfig { ImgScale = [64, 64] });
        CopyPasteTrainingTests.TrainsWithFiniteLosses(config, Path.Combine(_root, "work"));
    }
}
