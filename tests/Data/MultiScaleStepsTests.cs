using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

/// <summary>
/// The multi-scale training steps researchers port from mmdet and detectron2: resize's multiscale_mode range (mmcv 2.x's
/// RandomResize), resize_shortest_edge (detectron2's ResizeShortestEdge), random_choice (mmcv's RandomChoice) and
/// random_crop's crop types and allow_negative_crop (mmdet's RandomCrop), each against sizes worked out from the upstream
/// formulas, the upstream draw order replayed on a generator of the same seed, distribution bounds and refusals.
/// </summary>
public class MultiScaleStepsTests
{
    private static DataSample Blank(int height, int width) => new(0, "blank", new byte[height * width * 3], height, width);

    private static (int Height, int Width) SizeAfter(ISampleTransform step, int height, int width, int seed)
    {
        var sample = Blank(height, width);
        step.Apply(sample, new Random(seed));
        return (sample.Height, sample.Width);
    }

    private static ISampleTransform Step(string yaml) => TransformConfigTests.FromYaml("train_pipeline:\n  - " + yaml).Steps[0];

    private static string Refusal(string yaml) => Assert.Throws<VimException>(() => Step(yaml))!.Message;

    /// <summary>
    /// mmcv's rescale: the factor min(long / max(h, w), short / min(h, w)), each side int(side × factor + 0.5); a 480×640 image
    /// into (1333, 800): min(1333/640, 800/480) = 5/3, 640·5/3 = 1066.7 → 1067 wide, 800 high.
    /// </summary>
    [Test]
    public void RangeDrawsEachEdgeBetweenTheTwoScalesAndRescalesAsMmcv()
    {
        var pinned = Step("resize: {scales: [[1333, 800], [1333, 800]], multiscale_mode: range}");
        Assert.That(SizeAfter(pinned, 480, 640, seed: 0), Is.EqualTo((800, 1067)));

        // mmcv's _random_sample draws randint(1333, 1334), then randint(640, 801); the short edge governs a 480×640 image
        // (x/480 <= 800/480 < 1333/640), so its height is the drawn short edge and its width int(640·s/480 + 0.5).
        var coco = Step("resize: {scales: [[1333, 640], [1333, 800]], multiscale_mode: range}");
        var heights = new HashSet<int>();
        for (int seed = 0; seed < 3000; seed++)
        {
            var replay = new Random(seed);
            int longEdge = replay.Next(1333, 1334), shortEdge = replay.Next(640, 801);
            double factor = Math.Min(longEdge / 640.0, shortEdge / 480.0);
            var expected = ((int)(480 * factor + 0.5), (int)(640 * factor + 0.5));
            var actual = SizeAfter(coco, 480, 640, seed);
            Assert.That(actual, Is.EqualTo(expected), $"seed {seed}");
            heights.Add(actual.Height);
        }
        Assert.That((heights.Min(), heights.Max()), Is.EqualTo((640, 800)), "both ends of the range are drawn");
        Assert.That(heights, Has.Count.EqualTo(161), "every short edge 640..800 is drawn over 3000 samples");

        // Without keep_ratio the first numbers are the width, the second the height, each drawn between the scales'.
        var free = Step("resize: {scales: [[100, 60], [120, 80]], multiscale_mode: range, keep_ratio: false}");
        var sizes = Enumerable.Range(0, 2000).Select(seed => SizeAfter(free, 30, 40, seed)).ToList();
        Assert.That((sizes.Min(s => s.Width), sizes.Max(s => s.Width)), Is.EqualTo((100, 120)));
        Assert.That((sizes.Min(s => s.Height), sizes.Max(s => s.Height)), Is.EqualTo((60, 80)));

        // value (the default) picks one of the scales whole: only 640 or 800 high.
        var value = Step("resize: {scales: [[1333, 640], [1333, 800]]}");
        Assert.That(Enumerable.Range(0, 200).Select(seed => SizeAfter(value, 480, 640, seed).Height).Distinct().Order(), Is.EqualTo(new[] { 640, 800 }));
    }

    [Test]
    public void RangeNeedsExactlyTwoScalesAndNoRatioRange()
    {
        Assert.That(Refusal("resize: {scales: [[1333, 640], [1333, 720], [1333, 800]], multiscale_mode: range}"),
            Does.Contain("train_pipeline[0]: Resize multiscale_mode range draws each edge between two scales and needs exactly two, got 3"));
        Assert.That(Refusal("resize: {scales: [[1333, 640]], multiscale_mode: range}"), Does.Contain("needs exactly two, got 1"));
        Assert.That(Refusal("resize: {scales: [[1333, 640], [1333, 800]], multiscale_mode: range, ratio_range: [0.5, 2.0]}"),
            Does.Contain("train_pipeline[0]"));
        Assert.That(Refusal("resize: {scales: [[1333, 640], [1333, 800]], multiscale_mode: ranges}"),
            Does.Contain("must be one of value, range, got 'ranges'"));
    }

    /// <summary>
    /// detectron2's get_output_shape, worked by hand: 480×640 to short 800 is 800 × 1066.7 → (800, 1067), under 1333; 300×1000
    /// to 800 is 800 × 2666.7, over 1333, so both shrink by 1333/2666.7: (399.9, 1333) → (400, 1333); a portrait 1000×300
    /// to 640 without a cap is (2133.3, 640) → (2133, 640); a square stays square.
    /// </summary>
    [Test]
    public void ShortestEdgeSizesFollowDetectron2sArithmetic()
    {
        Assert.That(ResizeShortestEdge.OutputShape(480, 640, 800, 1333), Is.EqualTo((800, 1067)));
        Assert.That(ResizeShortestEdge.OutputShape(300, 1000, 800, 1333), Is.EqualTo((400, 1333)));
        Assert.That(ResizeShortestEdge.OutputShape(1000, 300, 640, null), Is.EqualTo((2133, 640)));
        Assert.That(ResizeShortestEdge.OutputShape(500, 500, 800, 1333), Is.EqualTo((800, 800)));

        // Boxes and masks follow the image: 120×160 to short 60 halves everything.
        var sample = RectangleScene.Create();
        Step("resize_shortest_edge: {short_edge_length: 60}").Apply(sample, new Random(0));
        Assert.That((sample.Height, sample.Width), Is.EqualTo((60, 80)));
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 15, 10, 45, 35 }));
        Assert.That(RectangleScene.Bounds(sample.Masks![0].Pixels, 60, 80, p => sample.Masks[0].Pixels[p] != 0), Is.EqualTo((15, 10, 45, 35)));

        // choice: one of the six lengths (numpy's choice, an index drawn uniformly), every one of them over 600 samples.
        var choice = Step("resize_shortest_edge: {short_edge_length: [640, 672, 704, 736, 768, 800], max_size: 1333, sample_style: choice}");
        var lengths = new[] { 640, 672, 704, 736, 768, 800 };
        var drawn = new HashSet<int>();
        for (int seed = 0; seed < 600; seed++)
        {
            int length = lengths[new Random(seed).Next(lengths.Length)];
            var actual = SizeAfter(choice, 480, 640, seed);
            Assert.That(actual, Is.EqualTo(ResizeShortestEdge.OutputShape(480, 640, length, 1333)), $"seed {seed}");
            drawn.Add(actual.Height);
        }
        Assert.That(drawn.Order(), Is.EqualTo(lengths));

        // range (detectron2's default): an integer in [min, max], both ends reached.
        var range = Step("resize_shortest_edge: {short_edge_length: [640, 800], max_size: 1333}");
        var heights = Enumerable.Range(0, 3000).Select(seed => SizeAfter(range, 480, 640, seed).Height).ToList();
        Assert.That((heights.Min(), heights.Max(), heights.Distinct().Count()), Is.EqualTo((640, 800, 161)));
    }

    [Test]
    public void ShortestEdgeRefusesWhatDetectron2Asserts()
    {
        Assert.That(Refusal("resize_shortest_edge: {short_edge_length: [640, 672, 704], max_size: 1333}"),
            Does.Contain("train_pipeline[0]: ResizeShortestEdge sample_style range draws between [min, max] and takes one or two lengths, got 3")
                .And.Contain("sample_style choice"));
        Assert.That(Refusal("resize_shortest_edge: {max_size: 1333}"), Does.Contain("needs short_edge_length"));
        Assert.That(Refusal("resize_shortest_edge: {short_edge_length: [800, 640]}"), Does.Contain("must be [min, max], min <= max"));
        Assert.That(Refusal("resize_shortest_edge: {short_edge_length: 0}"), Does.Contain("must be positive lengths"));
        Assert.That(Refusal("resize_shortest_edge: {short_edge_length: 800, max_size: 0}"), Does.Contain("max_size 0 must be positive"));
    }

    /// <summary>
    /// numpy's choice: without probabilities an index drawn uniformly; with them the first cumulative probability above one
    /// uniform draw. Each branch here resizes to its own fixed size, so the size says which ran.
    /// </summary>
    [Test]
    public void RandomChoiceRunsOneSubPipelinePerSampleAsNumpyChooses()
    {
        const string Branches = """
            transforms:
                      - [resize: {scales: [[40, 30]], keep_ratio: false}]
                      - [resize: {scales: [[20, 10]], keep_ratio: false}, random_flip: {prob: 1.0}]
            """;
        var uniform = Step($"random_choice:\n      {Branches}");
        var weighted = Step($"random_choice:\n      {Branches}\n      prob: [0.25, 0.75]");
        int firstUniform = 0, firstWeighted = 0;
        const int Samples = 4000;
        for (int seed = 0; seed < Samples; seed++)
        {
            bool uniformFirst = new Random(seed).Next(2) == 0;
            bool weightedFirst = new Random(seed).NextDouble() < 0.25;
            var sample = Blank(12, 16);
            uniform.Apply(sample, new Random(seed));
            Assert.That((sample.Height, sample.Width, sample.Flipped), Is.EqualTo(uniformFirst ? (30, 40, false) : (10, 20, true)), $"seed {seed}");
            Assert.That(SizeAfter(weighted, 12, 16, seed), Is.EqualTo(weightedFirst ? (30, 40) : (10, 20)), $"seed {seed}");
            firstUniform += uniformFirst ? 1 : 0;
            firstWeighted += weightedFirst ? 1 : 0;
        }
        // Binomial bounds: 4000 draws of p = ½ and ¼ stay within 5 standard deviations (32 and 27 samples).
        Assert.That(firstUniform, Is.InRange(2000 - 160, 2000 + 160));
        Assert.That(firstWeighted, Is.InRange(1000 - 140, 1000 + 140));
    }

    [Test]
    public void RandomChoiceRefusesBadProbabilitiesAndNamesBadSubSteps()
    {
        Assert.That(Refusal("random_choice: {transforms: [[random_flip: {prob: 0.5}], [normalize: {}]], prob: [0.5]}"),
            Does.Contain("train_pipeline[0]: RandomChoice prob has 1 probabilities for 2 sub-pipelines"));
        Assert.That(Refusal("random_choice: {transforms: [[random_flip: {prob: 0.5}], [normalize: {}]], prob: [0.5, 0.6]}"),
            Does.Contain("sums to 1.1, not 1"));
        Assert.That(Refusal("random_choice: {transforms: [[random_flip: {prob: 0.5}], []]}"), Does.Contain("RandomChoice transforms[1] is empty"));
        Assert.That(Refusal("random_choice: {}"), Does.Contain("RandomChoice needs transforms"));
        Assert.That(Refusal("random_choice: {transforms: [[random_flip: {prob: 0.5}], [random_flip: {prob: 3}]]}"),
            Does.Contain("train_pipeline[0].random_choice.transforms[1][0]: RandomFlip prob 3 must be in [0, 1]"));
        Assert.That(Refusal("random_choice: {transforms: [[random_flip: {prob: 0.5}], [random_flip: {probability: 0.5}]]}"),
            Does.Contain("unknown key 'train_pipeline[0].random_choice.transforms[1][0].random_flip.probability'"));
    }

    /// <summary>mmdet's _get_crop_size then _rand_offset, replayed: crop height, crop width, then the offsets' y and x.</summary>
    private static (int Y0, int X0, int Height, int Width) ReplayAbsoluteRange(int seed, int height, int width, int min, int max)
    {
        var replay = new Random(seed);
        int cropH = replay.Next(Math.Min(height, min), Math.Min(height, max) + 1);
        int cropW = replay.Next(Math.Min(width, min), Math.Min(width, max) + 1);
        int y0 = replay.Next(height - cropH + 1), x0 = replay.Next(width - cropW + 1);
        return (y0, x0, cropH, cropW);
    }

    /// <summary>
    /// The red rectangle [30, 20, 90, 70) of a 120×160 scene cut by mmdet's absolute_range window: the crop's size and
    /// offset replayed, the box the visible part of the rectangle, [max(30 − x0, 0), max(20 − y0, 0), min(90 − x0, w),
    /// min(70 − y0, h)], the mask exactly its pixels, the object gone where nothing of it is left.
    /// </summary>
    [Test]
    public void AbsoluteRangeCropsCutBoxesAndMasksAsMmdet()
    {
        var crop = Step("random_crop: {crop_type: absolute_range, size_range: [30, 70], allow_negative_crop: true}");
        int kept = 0, dropped = 0;
        var heights = new HashSet<int>();
        for (int seed = 0; seed < 400; seed++)
        {
            var (y0, x0, h, w) = ReplayAbsoluteRange(seed, 120, 160, 30, 70);
            var sample = RectangleScene.Create();
            sample.LabelMap = null; // a detection sample
            crop.Apply(sample, new Random(seed));
            Assert.That((sample.Height, sample.Width), Is.EqualTo((h, w)), $"seed {seed}");
            heights.Add(h);
            float left = Math.Max(30 - x0, 0), top = Math.Max(20 - y0, 0), right = Math.Min(90 - x0, w), bottom = Math.Min(70 - y0, h);
            if (right > left && bottom > top)
            {
                kept++;
                Assert.That(sample.Boxes, Is.EqualTo(new[] { left, top, right, bottom }), $"seed {seed}");
                var mask = sample.Masks![0].Pixels;
                Assert.That(RectangleScene.Bounds(mask, h, w, p => mask[p] != 0), Is.EqualTo(((int)left, (int)top, (int)right, (int)bottom)), $"seed {seed}");
                Assert.That(mask.Count(v => v != 0), Is.EqualTo((int)((right - left) * (bottom - top))), $"seed {seed}");
            }
            else
            {
                dropped++;
                Assert.That(sample.InstanceCount, Is.Zero, $"seed {seed}: nothing of the object is left");
                Assert.That(sample.Masks, Is.Empty);
            }
        }
        Assert.That(kept > 0 && dropped > 0, $"the draws both keep and cut away the object ({kept} kept, {dropped} dropped)");
        Assert.That((heights.Min(), heights.Max()), Is.EqualTo((30, 70)));

        // relative: int(side × fraction + 0.5); relative_range: each fraction float32, then uniform up to 1, height first. The
        // blank sample has no object, which a strict crop gives up (mmdet's), so these size checks allow the empty crop.
        Assert.That(SizeAfter(Step("random_crop: {crop_type: relative, relative_size: [0.5, 0.3], allow_negative_crop: true}"), 120, 160, 0), Is.EqualTo((60, 48)));
        var relativeRange = Step("random_crop: {crop_type: relative_range, relative_size: [0.3, 0.7], allow_negative_crop: true}");
        for (int seed = 0; seed < 50; seed++)
        {
            var replay = new Random(seed);
            double fractionH = (float)0.3 + replay.NextDouble() * (1 - (float)0.3), fractionW = (float)0.7 + replay.NextDouble() * (1 - (float)0.7);
            Assert.That(SizeAfter(relativeRange, 120, 160, seed), Is.EqualTo(((int)(120 * fractionH + 0.5), (int)(160 * fractionW + 0.5))), $"seed {seed}");
        }
    }

    [Test]
    public void CropTypesRefuseOptionsTheyDoNotRead()
    {
        Assert.That(Refusal("random_crop: {crop_type: absolute_range}"), Does.Contain("train_pipeline[0]: RandomCrop crop_type absolute_range needs size_range: [min, max]"));
        Assert.That(Refusal("random_crop: {crop_type: absolute_range, size_range: [600, 384]}"), Does.Contain("got [600, 384]"));
        Assert.That(Refusal("random_crop: {size_range: [384, 600]}"), Does.Contain("size_range is read by crop_type absolute_range only, and crop_type is absolute"));
        Assert.That(Refusal("random_crop: {crop_type: relative, relative_size: [0.5, 1.5]}"), Does.Contain("fractions of the image in (0, 1], got [0.5, 1.5]"));
        Assert.That(Refusal("random_crop: {relative_size: [0.5, 0.5]}"), Does.Contain("relative_size is read by crop_type relative and relative_range only"));
    }

    /// <summary>Two 60×80 samples: 0's object sits in the top-left 10×10 corner, 1's covers the image; sample 2, if any, has its object outside.</summary>
    private sealed class CornerSource(int count, bool segmentation = false) : ISampleSource
    {
        public int Count => count;

        public DataSample Load(int index) => new(index, $"mem/{index}", new byte[60 * 80 * 3], 60, 80)
        {
            Boxes = index switch { 0 => [0, 0, 10, 10], 1 => [0, 0, 80, 60], _ => [100, 100, 110, 110] },
            Labels = [index],
            IsCrowd = [false],
            AnnotationIds = [index],
            LabelMap = segmentation ? new ushort[60 * 80] : null,
        };
    }

    private static List<DataSample> Draw(ISampleSource source, string crop, int samples)
    {
        var pipeline = new TransformPipeline(Step(crop), new Normalize(new NormalizeOptions()));
        var loader = new DataLoader(source, pipeline, new LoaderOptions { BatchSize = 1, NumWorkers = 0, Seed = 4, Shuffle = true });
        return loader.Samples(0, endless: true).Take(samples).ToList();
    }

    /// <summary>
    /// mmdet's RandomCrop returns None for a crop that leaves no object (allow_negative_crop false), and its dataset fetches
    /// another index: the loader's samples then always hold an object, and sample 0 (whose 10×10 object a 20×20 window of
    /// 60×80 mostly misses) gives way to others; with allow_negative_crop the empty crops stay. Segmentation samples are
    /// never given up (mmseg's crop), and a pipeline that gives up on every sample stops after mmengine's 1000 refetches.
    /// </summary>
    [Test]
    public void ACropLeavingNoObjectFetchesAnotherSampleUnlessAllowed()
    {
        var strict = Draw(new CornerSource(2), "random_crop: {height: 20, width: 20}", 200);
        Assert.That(strict.All(s => s.InstanceCount == 1), "every sample the loader hands on keeps an object");
        Assert.That(strict.Count(s => s.ImageId == 1), Is.GreaterThan(strict.Count(s => s.ImageId == 0) * 3),
            "sample 0's crops mostly miss its corner object (P(hit) = 10·10 / (41·61)), so sample 1 stands in for it");
        Assert.That(strict.Where(s => s.ImageId == 0).Select(s => s.Boxes[2] - s.Boxes[0]), Is.All.GreaterThan(0));

        var allowed = Draw(new CornerSource(2), "random_crop: {height: 20, width: 20, allow_negative_crop: true}", 200);
        Assert.That(allowed.Count(s => s.InstanceCount == 0), Is.GreaterThan(50), "empty crops stay");
        Assert.That(allowed.Count(s => s.ImageId == 0), Is.EqualTo(100), "each sample once per epoch of two");

        var segmentation = Draw(new CornerSource(2, segmentation: true), "random_crop: {height: 20, width: 20}", 40);
        Assert.That(segmentation.Count(s => s.ImageId == 0), Is.EqualTo(20), "segmentation samples are never given up");

        var error = Assert.Throws<InvalidOperationException>(() => Draw(new OnlyOutside(), "random_crop: {height: 20, width: 20}", 1))!;
        Assert.That(error.Message, Does.Contain($"gave up on {DataLoader.MaxRefetch + 1} samples in a row").And.Contain("allow_negative_crop"));
    }

    /// <summary>
    /// mmdet's _crop_data returns None where no gt box is left inside the window (<c>not valid_inds.any()</c>), which holds
    /// as well for a sample that had no box before the crop: a hand-made 60×80 detection sample without objects is given
    /// up by a strict crop whatever the window, kept with allow_negative_crop, and a segmentation sample without objects
    /// (mmseg's crop gives nothing up) is kept. A sample with an object the window covers is kept, as before.
    /// </summary>
    [Test]
    public void ACropOfASampleWithoutObjectsIsGivenUpAsMmdetUnlessAllowed()
    {
        DataSample Empty(bool segmentation) => new(7, "mem/empty", new byte[60 * 80 * 3], 60, 80) { LabelMap = segmentation ? new ushort[60 * 80] : null };
        var strict = Step("random_crop: {height: 20, width: 20}");
        for (int seed = 0; seed < 20; seed++)
        {
            var rejected = Assert.Throws<SampleRejectedException>(() => strict.Apply(Empty(segmentation: false), new Random(seed)))!;
            Assert.That(rejected.Message, Does.Contain("mem/empty").And.Contain("the sample had none").And.Contain("allow_negative_crop: false"));
            var segmentationSample = Empty(segmentation: true);
            strict.Apply(segmentationSample, new Random(seed));
            Assert.That((segmentationSample.Height, segmentationSample.Width), Is.EqualTo((20, 20)), "a segmentation sample is cropped, not given up");
        }
        var allowed = Empty(segmentation: false);
        Step("random_crop: {height: 20, width: 20, allow_negative_crop: true}").Apply(allowed, new Random(0));
        Assert.That((allowed.Height, allowed.Width, allowed.InstanceCount), Is.EqualTo((20, 20, 0)), "allow_negative_crop keeps it as background");

        var covered = new CornerSource(2).Load(1);
        strict.Apply(covered, new Random(0));
        Assert.That(covered.Boxes, Is.EqualTo(new float[] { 0, 0, 20, 20 }), "the covering object, clipped to the window, stays");
    }

    /// <summary>
    /// mmdet's MultiImageMixDataset takes partners from the dataset, which fetches another index for one its pipeline gives
    /// up; the sample being mixed keeps its own index. Sample 0's object lies outside (every crop gives it up), 1's and 2's
    /// cover their images: at positions 1 and 2 of an unshuffled epoch the loader hands on samples 1 and 2 themselves, and
    /// no partner is sample 0.
    /// </summary>
    [Test]
    public void AGivenUpMixingPartnerIsReplacedNotTheSampleBeingMixed()
    {
        var mixer = new PartnerRecorder();
        var pipeline = new TransformPipeline(Step("random_crop: {height: 20, width: 20}"), new Normalize(new NormalizeOptions()));
        for (int epoch = 0; epoch < 10; epoch++)
        {
            var loader = new DataLoader(new OutsideThenCovering(), pipeline, new LoaderOptions { BatchSize = 1, NumWorkers = 0, Seed = 4, Shuffle = false }, [mixer]);
            var samples = loader.Samples(epoch, endless: false).ToList();
            Assert.That(samples.Select(s => s.ImageId).Skip(1), Is.EqualTo(new long[] { 1, 2 }), $"epoch {epoch}");
        }
        Assert.That(mixer.Partners, Has.No.Member(0L).And.Member(1L).And.Member(2L));
    }

    /// <summary>0: one object outside the 60×80 image; 1 and 2: one object covering it.</summary>
    private sealed class OutsideThenCovering : ISampleSource
    {
        public int Count => 3;

        public DataSample Load(int index)
        {
            var sample = new CornerSource(3).Load(index == 0 ? 2 : 1);
            return new DataSample(index, $"mem/{index}", sample.Image, 60, 80)
            {
                Boxes = sample.Boxes, Labels = sample.Labels, IsCrowd = sample.IsCrowd, AnnotationIds = sample.AnnotationIds,
            };
        }
    }

    /// <summary>A one-partner mixer that changes nothing and records which images it was given.</summary>
    private sealed class PartnerRecorder : ISampleMixer
    {
        public List<long> Partners { get; } = [];

        public int PartnerCount => 1;

        public void Mix(DataSample destination, IReadOnlyList<DataSample> partners, Random random) => Partners.AddRange(partners.Select(p => p.ImageId));
    }

    /// <summary>
    /// A given-up sample's stand-in is drawn from the sample's own (seed, epoch, index) generator, so the batches do not
    /// depend on the worker threads, a run resumed mid-epoch reads what the whole run read from there, and four processes
    /// together read each iteration what one process with their whole global batch reads.
    /// </summary>
    [Test]
    public void RefetchedSamplesDoNotDependOnWorkersResumeOrProcesses()
    {
        var pipeline = new TransformPipeline(Step("random_crop: {height: 20, width: 20}"), new Normalize(new NormalizeOptions()));
        var source = new AlternatingCorners(16);
        DataLoader Loader(int workers, int batch = 2, int rank = 0, int world = 1) => new(source, pipeline,
            new LoaderOptions { BatchSize = batch, Kind = BatchKind.Detection, NumWorkers = workers, Seed = 5, Rank = rank, WorldSize = world });
        static List<(long Id, float Sum)> Read(IEnumerable<Batch> batches, int take) => batches.Take(take).SelectMany(batch =>
        {
            using (batch) return batch.Metas.Select((meta, i) => (meta.ImageId, batch.Images[i].sum().item<float>())).ToList();
        }).ToList();

        var serial = Read(Loader(0).Infinite(), 16);
        Assert.That(serial.Count(s => s.Id % 2 == 1), Is.GreaterThan(20), "odd samples stand in for given-up even ones");
        Assert.That(Read(Loader(2).Infinite(), 16), Is.EqualTo(serial), "two workers");
        Assert.That(Read(Loader(0).Infinite(new LoaderPosition(1, 3)), 5), Is.EqualTo(serial.Skip(2 * (8 + 3)).ToList()), "resumed at epoch 1, batch 3");

        var whole = Read(Loader(0, batch: 4).Infinite(), 8);
        var ranks = Enumerable.Range(0, 4).Select(r => Read(Loader(0, batch: 1, rank: r, world: 4).Infinite(), 8)).ToList();
        for (int iteration = 0; iteration < 8; iteration++)
            Assert.That(ranks.Select(rank => rank[iteration]).OrderBy(s => s.Id).ThenBy(s => s.Sum),
                Is.EqualTo(whole.Skip(4 * iteration).Take(4).OrderBy(s => s.Id).ThenBy(s => s.Sum)), $"iteration {iteration}");
    }

    /// <summary>Image i is <see cref="CornerSource"/>'s sample i mod 2 (its object in a 10×10 corner, or covering it), with a ramp so crops differ.</summary>
    private sealed class AlternatingCorners(int count) : ISampleSource
    {
        public int Count => count;

        public DataSample Load(int index)
        {
            var like = new CornerSource(2).Load(index % 2);
            var image = new byte[60 * 80 * 3];
            for (int p = 0; p < image.Length; p++) image[p] = (byte)(p / 3 % 80 + p / 240 + index);
            return new DataSample(index, $"mem/{index}", image, 60, 80)
            {
                Boxes = like.Boxes, Labels = like.Labels, IsCrowd = like.IsCrowd, AnnotationIds = like.AnnotationIds,
            };
        }
    }

    /// <summary>Samples whose one object lies outside the image: any crop leaves none.</summary>
    private sealed class OnlyOutside : ISampleSource
    {
        public int Count => 3;

        public DataSample Load(int index) => new CornerSource(3).Load(2);
    }
}
