using NUnit.Framework;
using Vim.Core.Config;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using static Vim.Tests.Data.CopyPasteTests;

namespace Vim.Tests.Data;

/// <summary>Mosaic and MixUp in the loader's mixing stage, with the LSJ steps before them, on <see cref="CopyPasteTests.RectangleSource"/>.</summary>
public class MixingLoaderTests
{
    private static IReadOnlyList<ISampleMixer> Mixers() =>
        [new Mosaic(new MosaicConfig { ImgScale = [24, 24] }), new MixUp(new MixUpConfig { ImgScale = [48, 48] })];

    private static DataLoader Loader(int workers, int seed) =>
        new(new RectangleSource(9), TransformPipeline.DetectionLsjTraining(48),
            new LoaderOptions { BatchSize = 2, Kind = BatchKind.Detection, NumWorkers = workers, Seed = seed, SizeDivisor = 16 }, Mixers());

    /// <summary>
    /// Every partner (three for the mosaic, one for the mixup) and its augmentation come from the sample's (seed, epoch,
    /// index) draws: three workers give the batches the consumer thread does, the seed again the same, another seed others.
    /// The samples are the 48² mosaic of 24² tiles and carry objects of several images (ids 10·image + k).
    /// </summary>
    [Test]
    public void MosaicAndMixUpDependOnTheSeedAloneNotOnTheWorkers()
    {
        var inline = Contents(Loader(0, 7), 1);
        Assert.That(Contents(Loader(3, 7), 1), Is.EqualTo(inline), "three workers");
        Assert.That(Contents(Loader(0, 7), 1), Is.EqualTo(inline), "the same seed again");
        Assert.That(Contents(Loader(0, 8), 1), Is.Not.EqualTo(inline), "another seed");

        var samples = Loader(0, 7).Samples(1, endless: false).ToList();
        foreach (var s in samples)
        {
            Assert.That((s.Height, s.Width, s.ContentHeight, s.ContentWidth), Is.EqualTo((48, 48, 48, 48)));
            Assert.That(s.Masks, Has.Count.EqualTo(s.InstanceCount));
            for (int i = 0; i < s.InstanceCount; i++)
                Assert.That(s.Boxes.Skip(4 * i).Take(4), Has.All.InRange(0f, 48f), "clipped to the image");
        }
        Assert.That(samples.Count(s => s.AnnotationIds.Select(id => id / 10).Distinct().Count() >= 3), Is.GreaterThan(0), "objects of several images");
    }
}
