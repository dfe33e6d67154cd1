using NUnit.Framework;
using OpenCvSharp;
using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

/// <summary>
/// random_cutout, adjust_gamma, clahe and rgb2gray (mmseg's RandomCutOut, AdjustGamma, CLAHE, RGB2Gray) against hand counts,
/// their formulas and OpenCV's CLAHE run here on each channel.
/// </summary>
public class PixelStepTests
{
    private static DataSample Uniform(int height, int width, byte value, ushort label)
    {
        var image = new byte[height * width * 3];
        Array.Fill(image, value);
        var labels = new ushort[height * width];
        Array.Fill(labels, label);
        return new DataSample(1, "uniform", image, height, width) { LabelMap = labels };
    }

    /// <summary>
    /// Hands out scripted draws and checks each lies in the range asked for, so a step that draws in another order or range
    /// (x against the height, say) fails.
    /// </summary>
    private sealed class ScriptedRandom(params double[] draws) : Random
    {
        private readonly Queue<double> _draws = new(draws);

        public bool Exhausted => _draws.Count == 0;

        public override double NextDouble() => _draws.Dequeue();

        public override int Next(int maxValue) => Next(0, maxValue);

        public override int Next(int minValue, int maxValue)
        {
            int value = (int)_draws.Dequeue();
            Assert.That(value, Is.GreaterThanOrEqualTo(minValue).And.LessThan(maxValue), $"scripted draw {value} outside [{minValue}, {maxValue})");
            return value;
        }
    }

    private static HashSet<(int X, int Y)> Where(DataSample s, Func<int, bool> selected) =>
        Enumerable.Range(0, s.Height * s.Width).Where(selected).Select(p => (p % s.Width, p / s.Width)).ToHashSet();

    private static HashSet<(int X, int Y)> Rectangles(params (int X0, int Y0, int X1, int Y1)[] rectangles) =>
        rectangles.SelectMany(r => Enumerable.Range(r.Y0, r.Y1 - r.Y0).SelectMany(y => Enumerable.Range(r.X0, r.X1 - r.X0).Select(x => (x, y)))).ToHashSet();

    [Test]
    public void CutoutFillsItsHolesClippedToTheImageAndTheLabelsOnlyWhenAsked()
    {
        // mmseg's draws: the coin, the count in [1, 3], then per hole x in [0, 20), y in [0, 10), the candidate.
        // Holes: 4×2 at (2, 3) → 8 px; 3×5 at (10, 4) → 15 px; 3×5 at (18, 9) cut at the border to 2×1 → 2 px: 25 in all.
        double[] script = [0.0, 3, 2, 3, 0, 10, 4, 1, 18, 9, 1];
        var holes = Rectangles((2, 3, 6, 5), (10, 4, 13, 9), (18, 9, 20, 10));
        Assert.That(holes, Has.Count.EqualTo(25));
        foreach (int? segFill in new int?[] { null, 7 })
        {
            var cutout = new RandomCutout(new RandomCutoutOptions
            {
                Prob = 0.5, NHoles = [1, 3], CutoutShape = [[4, 2], [3, 5]], FillIn = [1, 2, 3], SegFillIn = segFill,
            });
            var sample = Uniform(10, 20, 60, 1);
            var random = new ScriptedRandom(script);
            cutout.Apply(sample, random);
            Assert.That(random.Exhausted, Is.True, "every scripted draw used");
            var filled = Where(sample, p => sample.Image[3 * p] == 1 && sample.Image[3 * p + 1] == 2 && sample.Image[3 * p + 2] == 3);
            Assert.That(filled, Is.EquivalentTo(holes));
            Assert.That(Where(sample, p => sample.Image[3 * p] == 60 && sample.Image[3 * p + 1] == 60 && sample.Image[3 * p + 2] == 60), Has.Count.EqualTo(200 - 25));
            if (segFill is null) Assert.That(sample.LabelMap!.All(v => v == 1), Is.True, "no seg_fill_in: labels untouched");
            else Assert.That(Where(sample, p => sample.LabelMap![p] == 7), Is.EquivalentTo(holes));
        }
    }

    [Test]
    public void CutoutRatiosAreTruncatedFractionsOfTheImage()
    {
        // ⌊0.33·20⌋ = 6 wide, ⌊0.35·10⌋ = 3 tall, at (0, 0); a single fill value fills all three channels.
        var cutout = new RandomCutout(new RandomCutoutOptions { Prob = 1, NHoles = [1], CutoutRatio = [[0.33, 0.35]], FillIn = [255] });
        var sample = Uniform(10, 20, 60, 1);
        cutout.Apply(sample, new ScriptedRandom(0.0, 1, 0, 0, 0));
        Assert.That(Where(sample, p => sample.Image[3 * p] == 255 && sample.Image[3 * p + 1] == 255 && sample.Image[3 * p + 2] == 255),
            Is.EquivalentTo(Rectangles((0, 0, 6, 3))));
    }

    [Test]
    public void RotateAndCutoutWithProbabilityZeroChangeNothing()
    {
        foreach (ISampleTransform step in new ISampleTransform[]
                 {
                     new RandomRotate(new RandomRotateOptions { Prob = 0, Degree = [30] }),
                     new RandomCutout(new RandomCutoutOptions { Prob = 0, NHoles = [2, 5], CutoutShape = [[8, 8]], SegFillIn = 0 }),
                 })
            for (int seed = 0; seed < 20; seed++)
            {
                var original = RectangleScene.Create();
                var sample = original.Copy();
                step.Apply(sample, new Random(seed));
                var context = $"{step.GetType().Name} seed {seed}";
                Assert.That(sample.Image, Is.EqualTo(original.Image), context);
                Assert.That(sample.LabelMap, Is.EqualTo(original.LabelMap), context);
                Assert.That(sample.Boxes, Is.EqualTo(original.Boxes), context);
                Assert.That(sample.Masks![0].Pixels, Is.EqualTo(original.Masks![0].Pixels), context);
                Assert.That((sample.Height, sample.Width), Is.EqualTo((original.Height, original.Width)), context);
            }
    }

    [Test]
    public void GammaIsMmsegsTruncatedTable()
    {
        var image = Enumerable.Range(0, 256 * 3).Select(i => (byte)(i / 3)).ToArray();
        foreach (double gamma in new[] { 2.0, 0.5, 2.2 })
        {
            var sample = new DataSample(1, "ramp", (byte[])image.Clone(), 16, 16);
            new AdjustGamma(new AdjustGammaOptions { Gamma = gamma }).Apply(sample, new Random(0));
            for (int x = 0; x < 256; x++)
            {
                // numpy's astype('uint8') truncates the table's doubles.
                var expected = (byte)Math.Floor(255 * Math.Pow(x / 255.0, 1 / gamma));
                Assert.That(sample.Image[(3 * x)..(3 * x + 3)], Is.EqualTo(new[] { expected, expected, expected }), $"gamma {gamma}, x {x}");
            }
        }
        // By hand: gamma 2 takes square roots, 255·√(64/255) = √16320 = 127.75 → 127 and √255 = 15.97 → 15;
        // gamma 0.5 squares, 128²/255 = 64.25 → 64.
        var byHand = new DataSample(1, "hand", [64, 1, 255, 128, 0, 0], 1, 2);
        new AdjustGamma(new AdjustGammaOptions { Gamma = 2 }).Apply(byHand, new Random(0));
        Assert.That(byHand.Image[..3], Is.EqualTo(new byte[] { 127, 15, 255 }));
        var squared = new DataSample(1, "hand", [128, 0, 0], 1, 1);
        new AdjustGamma(new AdjustGammaOptions { Gamma = 0.5 }).Apply(squared, new Random(0));
        Assert.That(squared.Image[0], Is.EqualTo(64));
    }

    [Test]
    public void ClaheKeepsAConstantImageConstant()
    {
        // 64×64 in 8×8 tiles of 64 pixels: OpenCV clips each tile's single full bin at ⌊40·64/256⌋ = 10 and hands the 54
        // clipped counts one each to bins 0, 4, 8, … (step ⌊256/54⌋ = 4). Value 100's cumulative count is its 10 plus the 26
        // bins 0, 4, …, 100 that got one: 36 · 255/64 = 143.4 → 143.
        var sample = Uniform(64, 64, 100, 0);
        new Clahe(new ClaheOptions()).Apply(sample, new Random(0));
        Assert.That(sample.Image.Distinct(), Is.EqualTo(new byte[] { 143 }));
        // Different constants per channel stay constant per channel.
        var coloured = new DataSample(1, "colour", Enumerable.Range(0, 48 * 40).SelectMany(_ => new byte[] { 10, 128, 240 }).ToArray(), 48, 40);
        new Clahe(new ClaheOptions { ClipLimit = 2, TileGridSize = [4, 3] }).Apply(coloured, new Random(0));
        for (int c = 0; c < 3; c++)
            Assert.That(Enumerable.Range(0, 48 * 40).Select(p => coloured.Image[3 * p + c]).Distinct().Count(), Is.EqualTo(1), $"channel {c}");
    }

    [TestCase(40.0, 8, 8)]
    [TestCase(2.0, 5, 3)]
    public void ClaheIsOpenCvsClaheOnEachChannel(double clipLimit, int tilesAcross, int tilesDown)
    {
        // A noisy gradient, different per channel, of a size the tiles do not divide (OpenCV pads it).
        const int h = 45, w = 61;
        var random = new Random(3);
        var image = new byte[h * w * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) image[(y * w + x) * 3 + c] = (byte)Math.Clamp(x * (c + 1) + y * 2 - 20 * c + random.Next(30), 0, 255);
        var sample = new DataSample(1, "noise", (byte[])image.Clone(), h, w);
        new Clahe(new ClaheOptions { ClipLimit = clipLimit, TileGridSize = [tilesAcross, tilesDown] }).Apply(sample, new Random(0));
        using var clahe = Cv2.CreateCLAHE(clipLimit, new Size(tilesAcross, tilesDown));
        for (int c = 0; c < 3; c++)
        {
            using var plane = new Mat(h, w, MatType.CV_8UC1);
            for (int p = 0; p < h * w; p++) plane.Set(p / w, p % w, image[3 * p + c]);
            using var equalised = new Mat();
            clahe.Apply(plane, equalised);
            var expected = new byte[h * w];
            for (int p = 0; p < h * w; p++) expected[p] = equalised.Get<byte>(p / w, p % w);
            Assert.That(Enumerable.Range(0, h * w).Select(p => sample.Image[3 * p + c]).ToArray(), Is.EqualTo(expected), $"channel {c}");
            Assert.That(expected, Is.Not.EqualTo(Enumerable.Range(0, h * w).Select(p => image[3 * p + c]).ToArray()), "CLAHE changes this image");
        }
    }

    [Test]
    public void GreyIsTheWeightedSumInEveryChannel()
    {
        var sample = new DataSample(1, "rgb", [200, 100, 50, 10, 20, 31], 1, 2);
        new Rgb2Gray(new Rgb2GrayOptions()).Apply(sample, new Random(0));
        // 0.299·200 + 0.587·100 + 0.114·50 = 59.8 + 58.7 + 5.7 = 124.2 → 124; 0.299·10 + 0.587·20 + 0.114·31 = 18.264 → 18.
        Assert.That(sample.Image, Is.EqualTo(new byte[] { 124, 124, 124, 18, 18, 18 }));
        var custom = new DataSample(1, "rgb", [10, 20, 31, 200, 100, 50], 1, 2);
        new Rgb2Gray(new Rgb2GrayOptions { Weights = [0.5, 0.25, 0.25], OutChannels = 3 }).Apply(custom, new Random(0));
        // 5 + 5 + 7.75 = 17.75 → 18; 100 + 25 + 12.5 = 137.5 → 138 (a half goes to the even neighbour).
        Assert.That(custom.Image, Is.EqualTo(new byte[] { 18, 18, 18, 138, 138, 138 }));
        var bright = new DataSample(1, "rgb", [200, 100, 50], 1, 1);
        new Rgb2Gray(new Rgb2GrayOptions { Weights = [1, 1, 1] }).Apply(bright, new Random(0));
        Assert.That(bright.Image, Is.EqualTo(new byte[] { 255, 255, 255 }), "350 is clamped to a byte");
    }

    [Test]
    public void TheSameSeedGivesTheSameSampleThroughEveryNewStep()
    {
        var pipeline = new TransformPipeline(
            new RandomRotate(new RandomRotateOptions { Prob = 0.7, Degree = [-20, 20] }),
            new RandomCutout(new RandomCutoutOptions { Prob = 0.7, NHoles = [1, 4], CutoutShape = [[12, 8], [5, 20]], SegFillIn = 255 }),
            new AdjustGamma(new AdjustGammaOptions { Gamma = 1.4 }),
            new Clahe(new ClaheOptions { ClipLimit = 3, TileGridSize = [4, 4] }),
            new Rgb2Gray(new Rgb2GrayOptions()),
            new Normalize(new NormalizeOptions()));
        var labelMaps = RectangleScene.AssertSameAugmentation(pipeline, pipeline, seeds: 6);
        Assert.That(labelMaps.Skip(1).Any(map => !map.SequenceEqual(labelMaps[0])), Is.True, "different seeds draw different rotations and holes");
    }

    [Test]
    public void PixelStepsRefuseAFloatImage()
    {
        foreach (ISampleTransform step in new ISampleTransform[]
                 {
                     new RandomCutout(new RandomCutoutOptions { Prob = 1, NHoles = [1], CutoutShape = [[2, 2]] }),
                     new AdjustGamma(new AdjustGammaOptions { Gamma = 2 }), new Clahe(new ClaheOptions()), new Rgb2Gray(new Rgb2GrayOptions()),
                     new RandomRotate(new RandomRotateOptions { Prob = 1, Degree = [5] }),
                 })
        {
            var sample = RectangleScene.Create();
            new Normalize(new NormalizeOptions()).Apply(sample, new Random(0));
            var e = Assert.Throws<InvalidOperationException>(() => step.Apply(sample, new Random(0)))!;
            Assert.That(e.Message, Does.Contain("before Normalize"), step.GetType().Name);
        }
    }

    [Test]
    public void BadOptionsNameTheOption()
    {
        string Cutout(RandomCutoutOptions o) => Assert.Throws<ArgumentException>(() => new RandomCutout(o))!.Message;
        var valid = new RandomCutoutOptions { Prob = 0.5, NHoles = [2], CutoutShape = [[4, 4]] };
        Assert.That(Cutout(valid with { Prob = -0.1 }), Does.Contain("prob -0.1"));
        Assert.That(Cutout(valid with { Prob = null }), Does.Contain("needs prob"));
        Assert.That(Cutout(valid with { CutoutRatio = [[0.1, 0.1]] }), Does.Contain("exactly one of cutout_shape").And.Contain("cutout_ratio"));
        Assert.That(Cutout(valid with { CutoutShape = null }), Does.Contain("exactly one of cutout_shape"));
        Assert.That(Cutout(valid with { CutoutShape = [[4]] }), Does.Contain("cutout_shape [4]"));
        Assert.That(Cutout(valid with { CutoutShape = null, CutoutRatio = [[1.5, 0.2]] }), Does.Contain("cutout_ratio [1.5, 0.2]"));
        Assert.That(Cutout(valid with { NHoles = [3, 3] }), Does.Contain("n_holes [3, 3]"));
        Assert.That(Cutout(valid with { NHoles = [0] }), Does.Contain("n_holes 0"));
        Assert.That(Cutout(valid with { NHoles = null }), Does.Contain("needs n_holes"));
        Assert.That(Cutout(valid with { FillIn = [1, 2] }), Does.Contain("fill_in [1, 2]"));
        Assert.That(Cutout(valid with { FillIn = [0, 0, 256] }), Does.Contain("fill_in [0, 0, 256]"));
        Assert.That(Cutout(valid with { SegFillIn = -1 }), Does.Contain("seg_fill_in -1"));

        Assert.That(Assert.Throws<ArgumentException>(() => new AdjustGamma(new AdjustGammaOptions { Gamma = 0 }))!.Message, Does.Contain("gamma 0"));
        Assert.That(Assert.Throws<ArgumentException>(() => new AdjustGamma(new AdjustGammaOptions { Gamma = -2 }))!.Message, Does.Contain("gamma -2"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Clahe(new ClaheOptions { ClipLimit = -1 }))!.Message, Does.Contain("clip_limit -1"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Clahe(new ClaheOptions { TileGridSize = [8] }))!.Message, Does.Contain("tile_grid_size [8]"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Clahe(new ClaheOptions { TileGridSize = [0, 8] }))!.Message, Does.Contain("tile_grid_size [0, 8]"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Rgb2Gray(new Rgb2GrayOptions { OutChannels = 1 }))!.Message, Does.Contain("out_channels 1"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Rgb2Gray(new Rgb2GrayOptions { Weights = [1, 2] }))!.Message, Does.Contain("weights [1, 2]"));
    }
}
