using NUnit.Framework;
using Vim.Core.Config;
using Vim.Data.Datasets;
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

    /// <summary>
    /// Image 0: black, no objects; image 1: a ramp, red 2x and green 2y at column x and row y, with one box. 64² both, so
    /// the mosaic fits them to 32² tiles and MixUp (img_scale 64², no jitter, no flip) takes image 1 unresized.
    /// </summary>
    private sealed class BlackAndRampSource : ISampleSource
    {
        public int Count => 2;

        public DataSample Load(int index)
        {
            var image = new byte[64 * 64 * 3];
            if (index == 1)
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 64; x++)
                        (image[3 * (64 * y + x)], image[3 * (64 * y + x) + 1], image[3 * (64 * y + x) + 2]) = ((byte)(2 * x), (byte)(2 * y), 200);
            var sample = new DataSample(index, $"ramp/{index}", image, 64, 64);
            if (index == 1) (sample.Boxes, sample.Labels, sample.IsCrowd, sample.AnnotationIds) = ([8, 8, 56, 56], [2], [false], [10]);
            return sample;
        }
    }

    /// <summary>
    /// YOLOX's order, Mosaic → RandomAffine → MixUp. The mosaic (centre fixed at (32, 32)) puts black image 0's tile at the
    /// top left of its 64² canvas; the affine (border −16 = −img_scale/2, no rotation, shear, scale or translation) keeps
    /// exactly that 32² corner, so MixUp mixes into a black 32² sample, and its 64² ramp partner (image 1: the only one with
    /// objects, which MixUp redraws until it gets) is cut at a drawn offset (ox, oy) in [0, 32)². Each pixel is then
    /// ⌊(0 + 2(x + ox)) / 2⌋ = x + ox red and y + oy green, and the partner's box [8, 8, 56, 56] moves to
    /// [8 − ox, 8 − oy, 56 − ox, 56 − oy] clipped to [0, 32]. Mixing before the affine (the old order) mixed into the 64²
    /// mosaic, which the partner never exceeds: the offset was always (0, 0).
    /// </summary>
    [Test]
    public void MixUpMixesTheRandomAffinesOutputAtADrawnOffset()
    {
        var pipeline = new TransformPipeline(
            new RandomAffine(new RandomAffineOptions { MaxRotateDegree = 0, MaxTranslateRatio = 0, ScalingRatioRange = [1, 1], MaxShearDegree = 0, Border = [-16, -16] }),
            new Normalize(new NormalizeOptions()));
        ISampleMixer[] mixers =
        [
            new Mosaic(new MosaicConfig { ImgScale = [32, 32], CenterRatioRange = [1, 1] }),
            new MixUp(new MixUpConfig { ImgScale = [64, 64], RatioRange = [1, 1], FlipRatio = 1, SkipFilter = true }),
        ];
        var stage = new MixingStage(pipeline, mixers);
        var offsets = new HashSet<(int X, int Y)>();
        for (int seed = 0; seed < 8; seed++)
        {
            var source = new BlackAndRampSource();
            var sample = source.Load(0);
            stage.Apply(sample, new Random(seed), source);

            Assert.That((sample.Height, sample.Width), Is.EqualTo((32, 32)), "img_scale: the affine's output, not the 2·img_scale mosaic");
            int ox = sample.Image[0], oy = sample.Image[1];
            Assert.That(ox is >= 0 and < 32 && oy is >= 0 and < 32, $"seed {seed}: offset ({ox}, {oy}) outside [0, 32)²");
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                {
                    int p = 3 * (32 * y + x);
                    Assert.That((sample.Image[p], sample.Image[p + 1], sample.Image[p + 2]), Is.EqualTo(((byte)(x + ox), (byte)(y + oy), (byte)100)),
                        $"seed {seed}, pixel ({x}, {y}): the partner's pixel ({x + ox}, {y + oy}) averaged with black");
                }
            float Clip(int v) => Math.Clamp(v, 0, 32);
            Assert.That(sample.AnnotationIds, Is.EqualTo(new long[] { 10 }), $"seed {seed}: the partner's object alone");
            Assert.That(sample.Boxes, Is.EqualTo(new[] { Clip(8 - ox), Clip(8 - oy), Clip(56 - ox), Clip(56 - oy) }), $"seed {seed}: the partner's box");
            offsets.Add((ox, oy));
        }
        Assert.That(offsets.Any(o => o != (0, 0)), "some seed cuts the partner away from its top-left corner");
        Assert.That(offsets, Has.Count.GreaterThan(1), "the offset is drawn, not fixed");
    }
}
