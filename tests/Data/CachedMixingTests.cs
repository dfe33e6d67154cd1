using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using static Vim.Tests.Data.CopyPasteTests;

namespace Vim.Tests.Data;

/// <summary>
/// data.mosaic / data.mixup with cached: true (mmdet 3.x's CachedMosaic and CachedMixUp): the cache's evolution over stream
/// positions worked by hand, mmdet's pass-through thresholds and order of draws (prob, then the partners), partners
/// re-produced from their own loads, and a loader whose mixes depend on neither workers, resume nor sharding.
/// </summary>
public class CachedMixingTests
{
    /// <summary>
    /// A generator whose Next(n) returns scripted values, checking each n: the pops mmdet's randint(0, len − 1) makes, numpy's
    /// (transforms.py imports `from numpy import random`), whose upper bound is excluded.
    /// </summary>
    private sealed class ScriptedPops(params (int Bound, int Value)[] script) : Random
    {
        private int _next;

        public override int Next(int maxValue)
        {
            Assert.That(_next, Is.LessThan(script.Length), "more pops than scripted");
            var (bound, value) = script[_next++];
            Assert.That(maxValue, Is.EqualTo(bound), $"pop {_next}: drawn from a cache of {bound}");
            return value;
        }

        public int Used => _next;
    }

    [Test]
    public void AFifoCacheKeepsTheLastMaxCachedImagesPositions()
    {
        var contents = PartnerCache.Evolve(8, new PartnerCacheSettings(5, RandomPop: false, 5, 1), new ScriptedPops());
        Assert.That(contents[0], Is.EqualTo(new[] { 0 }));
        Assert.That(contents[3], Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(contents[4], Is.EqualTo(new[] { 0, 1, 2, 3, 4 }), "full, nothing popped yet");
        Assert.That(contents[5], Is.EqualTo(new[] { 1, 2, 3, 4, 5 }), "the oldest leaves");
        Assert.That(contents[7], Is.EqualTo(new[] { 3, 4, 5, 6, 7 }));
    }

    /// <summary>
    /// max 3, a cache of 4 pops numpy's randint(0, 3), one of the 3 entries before the newcomer: at 3, [0, 1, 2, 3] drops
    /// entry 1 (position 1); at 4, [0, 2, 3, 4] drops entry 2 (position 3); at 5, [0, 2, 4, 5] drops entry 0 (position 0).
    /// </summary>
    [Test]
    public void ARandomPopCacheDropsADrawnEntryButNeverTheNewcomer()
    {
        var pops = new ScriptedPops((3, 1), (3, 2), (3, 0));
        var contents = PartnerCache.Evolve(6, new PartnerCacheSettings(3, RandomPop: true, 2, 1), pops);
        Assert.That(contents, Is.EqualTo(new int[][] { [0], [0, 1], [0, 1, 2], [0, 2, 3], [0, 2, 4], [2, 4, 5] }));
        Assert.That(pops.Used, Is.EqualTo(3), "one pop per position past the third");
    }

    /// <summary>Stream position → dataset index of a made-up epoch.</summary>
    private static readonly int[] Order = [4, 7, 1, 0, 8, 2, 3, 5, 6];

    private static MixingStage Stage(params ISampleMixer[] mixers) => new(new TransformPipeline(new Normalize(new NormalizeOptions())), mixers);

    /// <summary>The caches over <see cref="Order"/> (FIFO), and a producer that records which positions it re-produced: their plain loads.</summary>
    private static (EpochPartnerCaches Caches, Func<int, CachedPartners> At, List<int> Produced) Caches(ISampleSource source, params ISampleMixer[] mixers)
    {
        var contents = mixers.ToDictionary(m => m, m => PartnerCache.Evolve(Order.Length, m.Cache!, new ScriptedPops()));
        var caches = new EpochPartnerCaches(0, Order, contents);
        var produced = new List<int>();
        return (caches, position => new CachedPartners(caches, position, (q, mixer) =>
        {
            Assert.That(contents[mixer][position], Does.Contain(q), "a partner from the sample's own cache");
            Assert.That(q, Is.Not.EqualTo(position), "never the sample itself (numpy's randint(0, len − 1) excludes the newest)");
            produced.Add(q);
            return source.Load(Order[q]);
        }), produced);
    }

    private static Mosaic CachedMosaic(int max = 6, double prob = 1) =>
        new(new MosaicConfig { ImgScale = [24, 24], Cached = true, MaxCachedImages = max, RandomPop = false, Prob = prob });

    /// <summary>
    /// Position 3 has 4 cached (itself among them): mmdet passes the sample unchanged without a draw; position 4's 5 mix. Position 6 has
    /// [1 … 6]: a prob draw, three partners cache[Next(5)] (positions 1 … 5, not the sample's own 6), and then the mosaic of the sample and those partners' own
    /// loads, exactly as Mosaic.MixChosen makes it from the generator where the partner draws left it.
    /// </summary>
    [Test]
    public void CachedMosaicPassesFourCachedAndMixesPartnersDrawnFromTheCache()
    {
        var source = new RectangleSource(9);
        var mosaic = CachedMosaic();
        var (_, at, produced) = Caches(source, mosaic);

        var early = source.Load(Order[3]);
        var random = new Random(11);
        Assert.That(Stage(mosaic).Apply(early, random, source, at(3), stopBefore: null), Is.True);
        Assert.That(early.AnnotationIds, Is.EqualTo(new long[] { 0, 1 }));
        Assert.That(early.Image, Is.EqualTo(source.Load(Order[3]).Image), "unchanged");
        Assert.That(produced, Is.Empty);
        Assert.That(random.Next(), Is.EqualTo(new Random(11).Next()), "no draw made");

        var boundary = source.Load(Order[4]);
        Stage(mosaic).Apply(boundary, new Random(11), source, at(4), stopBefore: null);
        Assert.That(produced, Has.Count.EqualTo(3), "5 cached (more than 4): a mosaic");
        Assert.That((boundary.Height, boundary.Width), Is.EqualTo((48, 48)));
        produced.Clear();

        var sample = source.Load(Order[6]);
        Stage(mosaic).Apply(sample, new Random(11), source, at(6), stopBefore: null);

        var draws = new Random(11);
        draws.NextDouble(); // the prob test
        int[] cache = [1, 2, 3, 4, 5, 6];
        var partnerPositions = Enumerable.Range(0, 3).Select(_ => cache[draws.Next(5)]).ToArray();
        Assert.That(produced, Is.EqualTo(partnerPositions), "three partners drawn uniformly from the cache after the prob draw");
        var expected = source.Load(Order[6]);
        mosaic.MixChosen(expected, partnerPositions.Select(q => source.Load(Order[q])).ToList(), draws);
        Assert.That((sample.Height, sample.Width), Is.EqualTo((48, 48)), "the 2 × img_scale canvas");
        Assert.That(sample.Image, Is.EqualTo(expected.Image), "the tiles are the partners' own loads");
        Assert.That(sample.Boxes, Is.EqualTo(expected.Boxes));
        Assert.That(sample.AnnotationIds, Is.EqualTo(expected.AnnotationIds));
    }

    /// <summary>prob 0 (mmdet's uniform(0, 1) &gt; prob): the prob draw is made, the sample passes unchanged and no partner is re-produced.</summary>
    [Test]
    public void CachedMosaicWithProbZeroLeavesTheSample()
    {
        var source = new RectangleSource(9);
        var mosaic = CachedMosaic(prob: 0);
        var (_, at, produced) = Caches(source, mosaic);
        var sample = source.Load(Order[7]);
        var random = new Random(3);
        Stage(mosaic).Apply(sample, random, source, at(7), stopBefore: null);
        Assert.That(sample.Image, Is.EqualTo(source.Load(Order[7]).Image));
        Assert.That(produced, Is.Empty);
        var after = new Random(3);
        after.NextDouble();
        Assert.That(random.Next(), Is.EqualTo(after.Next()), "exactly one draw: the prob test");
    }

    /// <summary>Dataset indices 4, 7 and 1 (stream positions 0–2) have no objects; the rest are <see cref="RectangleSource"/>'s.</summary>
    private sealed class SomeEmptySource : ISampleSource
    {
        private readonly RectangleSource _inner = new(9);
        public int Count => 9;

        public DataSample Load(int index)
        {
            var sample = _inner.Load(index);
            if (index is 4 or 7 or 1) sample.KeepInstances(new bool[sample.InstanceCount]);
            return sample;
        }
    }

    /// <summary>
    /// CachedMixUp: 1 cached (position 0) passes, 2 (position 1) draw a partner; at position 4 the cache is [1 … 4] and partners are drawn as
    /// get_indexes does, cache[Next(3)] (not the sample's own 4) until one has objects or max_iters (3) draws are made, the last taken either way;
    /// an empty one mixes nothing.
    /// </summary>
    [Test]
    public void CachedMixUpPassesOneCachedAndRedrawsEmptyPartnersUpToMaxIters()
    {
        var source = new SomeEmptySource();
        var mixUp = new MixUp(new MixUpConfig { ImgScale = [48, 48], Cached = true, MaxCachedImages = 4, RandomPop = false, MaxIters = 3 });
        var (_, at, produced) = Caches(source, mixUp);

        var first = source.Load(Order[0]);
        Stage(mixUp).Apply(first, new Random(5), source, at(0), stopBefore: null);
        Assert.That(produced, Is.Empty, "one cached: no mix");
        Stage(mixUp).Apply(source.Load(Order[1]), new Random(5), source, at(1), stopBefore: null);
        Assert.That(produced, Is.Not.Empty, "two cached: a partner is drawn");

        int mixed = 0, empty = 0;
        for (int seed = 0; seed < 12; seed++)
        {
            produced.Clear();
            var sample = source.Load(Order[4]);
            Stage(mixUp).Apply(sample, new Random(seed), source, at(4), stopBefore: null);

            var draws = new Random(seed);
            draws.NextDouble();
            var expected = new List<int>();
            for (int draw = 1; draw <= 3; draw++)
            {
                expected.Add(1 + draws.Next(3));
                if (expected[^1] == 3) break; // position 3 (index 0) is the only cached partner with objects
            }
            Assert.That(produced, Is.EqualTo(expected), $"seed {seed}: the partner draws");
            bool partnerHasObjects = expected[^1] == 3;
            if (partnerHasObjects)
            {
                Assert.That(sample.Image, Is.Not.EqualTo(source.Load(Order[4]).Image), $"seed {seed}: blended with the partner");
                mixed++;
            }
            else
            {
                Assert.That(sample.Image, Is.EqualTo(source.Load(Order[4]).Image), $"seed {seed}: an empty partner mixes nothing");
                empty++;
            }
        }
        Assert.That(mixed, Is.GreaterThan(0), "some seed finds the partner with objects");
        Assert.That(empty, Is.GreaterThan(0), "some seed gives up after max_iters empty ones");
    }

    private static IReadOnlyList<ISampleMixer> CachedMixers(bool randomPop) =>
    [
        new Mosaic(new MosaicConfig { ImgScale = [24, 24], Cached = true, MaxCachedImages = 5, RandomPop = randomPop }),
        new MixUp(new MixUpConfig { ImgScale = [48, 48], Cached = true, MaxCachedImages = 3, RandomPop = randomPop, Prob = 0.7 }),
    ];

    private static DataLoader Loader(int workers, int seed = 7, int rank = 0, int worldSize = 1, int batch = 2, bool randomPop = true) =>
        new(new RectangleSource(9), TransformPipeline.DetectionLsjTraining(48),
            new LoaderOptions
            {
                BatchSize = batch, Kind = BatchKind.Detection, NumWorkers = workers, Seed = seed, SizeDivisor = 16, DropLast = true,
                Rank = rank, WorldSize = worldSize,
            }, CachedMixers(randomPop));

    private static object Fingerprint(DataSample s) => (s.NormalizedImage!.ToArray(), s.Boxes.ToArray(), s.AnnotationIds.ToArray(), s.Height, s.Width);

    [Test]
    public void CachedMixesDependOnNeitherWorkersNorResumeNorSharding()
    {
        var inline = Contents(Loader(0), 1);
        Assert.That(Contents(Loader(1), 1), Is.EqualTo(inline), "one worker");
        Assert.That(Contents(Loader(2), 1), Is.EqualTo(inline), "two workers");
        Assert.That(Contents(Loader(0, seed: 8), 1), Is.Not.EqualTo(inline), "another seed");

        var whole = Loader(0).Samples(1, endless: false).Select(Fingerprint).ToList();
        Assert.That(Loader(0).Samples(new LoaderPosition(1, 2), endless: false).Select(Fingerprint), Is.EqualTo(whole.Skip(4)), "resumed at batch 2");

        // Two processes of one sample a batch read, interleaved, what one process of two a batch reads.
        var ranks = Enumerable.Range(0, 2).Select(r => Loader(0, rank: r, worldSize: 2, batch: 1).Samples(1, endless: false).Select(Fingerprint).ToList()).ToList();
        var interleaved = ranks[0].Zip(ranks[1], (a, b) => new[] { a, b }).SelectMany(pair => pair).ToList();
        Assert.That(interleaved, Is.EqualTo(whole), "two ranks");
    }

    /// <summary>
    /// FIFO caches of 5 (mosaic) and 3 (mixup, after the mosaic): a sample at global position p holds objects of the images
    /// at positions p − 6 … p only (its mixup partner at p − 2 at most back, whose mosaic reaches 4 further), and some sample
    /// does mix objects of several images.
    /// </summary>
    [Test]
    public void PartnersComeFromTheLastCachedPositionsOfTheGlobalOrder()
    {
        var order = new DistributedSampler(9, shuffle: true, seed: 7).GlobalOrder(1);
        var samples = Loader(0, randomPop: false).Samples(1, endless: false).ToList();
        for (int p = 0; p < samples.Count; p++)
        {
            var images = samples[p].AnnotationIds.Select(id => (int)(id / 10)).Distinct().ToList();
            var window = order.Skip(Math.Max(0, p - 6)).Take(Math.Min(p, 6) + 1).ToList();
            Assert.That(images, Is.SubsetOf(window), $"position {p}");
        }
        Assert.That(samples.Count(s => s.AnnotationIds.Select(id => id / 10).Distinct().Count() >= 3), Is.GreaterThan(0), "mosaics of several images");
    }

    private static void Refused(Action check, string message) =>
        Assert.That(Assert.Throws<VimException>(() => check())!.Message, Does.StartWith(message));

    [Test]
    public void SettingsAMixerCannotRunWithAreRefusedByKey()
    {
        Refused(() => Mosaic.CheckSettings(new MosaicConfig { Cached = true, MaxCachedImages = 4 }),
            "data.mosaic.max_cached_images must be at least 5 with cached: true");
        Refused(() => Mosaic.CheckSettings(new MosaicConfig { Cached = true, MaxCachedImages = 4 }, "data.pipeline_switch.mosaic"),
            "data.pipeline_switch.mosaic.max_cached_images must be at least 5");
        Refused(() => MixUp.CheckSettings(new MixUpConfig { Cached = true, MaxCachedImages = 1 }), "data.mixup.max_cached_images must be at least 2 with cached: true");
        Refused(() => MixUp.CheckSettings(new MixUpConfig { Prob = 0.5 }), "data.mixup.prob is CachedMixUp's");
        Refused(() => MixUp.CheckSettings(new MixUpConfig { Cached = true, Prob = 1.5 }), "data.mixup.prob must be a probability in [0, 1]");
        Assert.DoesNotThrow(() => Mosaic.CheckSettings(new MosaicConfig { MaxCachedImages = 1 }), "the cache settings mean nothing uncached");
        Assert.DoesNotThrow(() => MixUp.CheckSettings(new MixUpConfig { Cached = true, MaxCachedImages = 2, Prob = 0.5 }));
    }
}
