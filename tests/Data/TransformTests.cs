using NUnit.Framework;
using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

public class TransformTests
{
    /// <summary>
    /// After any geometric transform the box must bound the mask (within a pixel of resampling), the
    /// label map must mark exactly the mask's pixels, and strongly red pixels must lie inside the mask
    /// (dilated by one pixel for bilinear edges).
    /// </summary>
    private static void AssertConsistent(DataSample s, string context)
    {
        Assert.That(s.Image.Length, Is.EqualTo(s.Height * s.Width * 3), context);
        Assert.That(s.LabelMap!.Length, Is.EqualTo(s.Height * s.Width), context);
        var labelBounds = RectangleScene.Bounds(s.LabelMap, s.Height, s.Width, p => s.LabelMap[p] == 2);
        if (s.InstanceCount == 0)
        {
            // The rectangle was cropped away entirely (or to nothing visible in the mask).
            Assert.That(labelBounds, Is.Null, $"{context}: instance removed but the label map still shows it");
            return;
        }
        Assert.That(s.InstanceCount, Is.EqualTo(1), context);
        var mask = s.Masks![0];
        Assert.That((mask.Height, mask.Width), Is.EqualTo((s.Height, s.Width)), context);
        var m = mask.Pixels;
        for (int p = 0; p < m.Length; p++)
            if ((m[p] != 0) != (s.LabelMap[p] == 2)) Assert.Fail($"{context}: mask and label map disagree at pixel {p}");
        var bounds = RectangleScene.Bounds(m, s.Height, s.Width, p => m[p] != 0)!.Value;
        var b = s.Boxes;
        Assert.That(b[0], Is.LessThanOrEqualTo(bounds.X0 + 1.0f).And.GreaterThanOrEqualTo(bounds.X0 - 1.0f), $"{context}: x1 box {b[0]} vs mask {bounds}");
        Assert.That(b[1], Is.LessThanOrEqualTo(bounds.Y0 + 1.0f).And.GreaterThanOrEqualTo(bounds.Y0 - 1.0f), $"{context}: y1 box {b[1]} vs mask {bounds}");
        Assert.That(b[2], Is.GreaterThanOrEqualTo(bounds.X1 - 1.0f).And.LessThanOrEqualTo(bounds.X1 + 1.0f), $"{context}: x2 box {b[2]} vs mask {bounds}");
        Assert.That(b[3], Is.GreaterThanOrEqualTo(bounds.Y1 - 1.0f).And.LessThanOrEqualTo(bounds.Y1 + 1.0f), $"{context}: y2 box {b[3]} vs mask {bounds}");
        for (int y = 0; y < s.Height; y++)
            for (int x = 0; x < s.Width; x++)
            {
                if (!RectangleScene.IsStrongRed(s.Image, y * s.Width + x)) continue;
                bool near = false;
                for (int dy = -1; dy <= 1 && !near; dy++)
                    for (int dx = -1; dx <= 1 && !near; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        near = yy >= 0 && yy < s.Height && xx >= 0 && xx < s.Width && m[yy * s.Width + xx] != 0;
                    }
                if (!near) Assert.Fail($"{context}: red pixel ({x}, {y}) outside the mask");
            }
        var redBounds = RectangleScene.Bounds(s.Image, s.Height, s.Width, p => RectangleScene.IsStrongRed(s.Image, p));
        Assert.That(redBounds, Is.Not.Null, $"{context}: the rectangle's colour vanished although the instance remains");
    }

    private static IEnumerable<(string Name, ISampleTransform Transform)> GeometricTransforms()
    {
        yield return ("resize-ratio", new Resize(new ResizeOptions { Scales = [[256, 96]], RatioRange = [0.5, 2.0] }));
        yield return ("resize-multiscale", new Resize(new ResizeOptions { Scales = [[200, 50], [300, 150], [90, 90]] }));
        yield return ("resize-exact", new Resize(new ResizeOptions { Scales = [[77, 51]], KeepRatio = false }));
        yield return ("resize-scale", new ResizeScale(new ResizeScaleOptions { MinScale = 0.1, MaxScale = 2.0, TargetHeight = 128, TargetWidth = 128 }));
        yield return ("fixed-crop", new FixedSizeCrop(new FixedSizeCropOptions { Height = 64, Width = 64 }));
        yield return ("fixed-crop-pad", new FixedSizeCrop(new FixedSizeCropOptions { Height = 128, Width = 200, Pad = true }));
        yield return ("random-crop", new RandomCrop(new RandomCropOptions { Height = 48, Width = 72, CatMaxRatio = 0.75, IgnoreIndex = 255 }));
        yield return ("flip", new RandomFlip(new RandomFlipOptions { Prob = 0.5 }));
        yield return ("pad", new Pad(new PadOptions { SizeDivisor = 32 }));
        yield return ("rotate", new RandomRotate(new RandomRotateOptions { Prob = 0.8, Degree = [30] }));
        yield return ("rotate-auto-bound", new RandomRotate(new RandomRotateOptions { Prob = 1, Degree = [-180, 180], AutoBound = true }));
        yield return ("lsj", new TransformPipeline(
            new RandomFlip(new RandomFlipOptions()),
            new ResizeScale(new ResizeScaleOptions { TargetHeight = 96, TargetWidth = 96 }),
            new FixedSizeCrop(new FixedSizeCropOptions { Height = 96, Width = 96 })));
        yield return ("seg-train", new TransformPipeline(
            new Resize(new ResizeOptions { Scales = [[320, 80]], RatioRange = [0.5, 2.0] }),
            new RandomCrop(new RandomCropOptions { Height = 64, Width = 64, CatMaxRatio = 0.75 }),
            new RandomFlip(new RandomFlipOptions()),
            new Pad(new PadOptions { Size = [64, 64] })));
    }

    [Test]
    public void GeometricTransformsKeepImageBoxMaskAndLabelsAligned()
    {
        foreach (var (name, transform) in GeometricTransforms())
        {
            int removed = 0;
            for (int seed = 0; seed < 25; seed++)
            {
                var s = RectangleScene.Create();
                transform.Apply(s, new Random(seed));
                if (s.InstanceCount == 0) removed++;
                AssertConsistent(s, $"{name} seed {seed}");
            }
            if (name is not ("fixed-crop" or "lsj")) Assert.That(removed, Is.Zero, $"{name} should never lose the rectangle");
        }
    }

    [Test]
    public void CropsThatMissTheInstanceRemoveIt()
    {
        var s = RectangleScene.Create();
        // Window x 100..160, y 70..120 lies right of and below the rectangle (30..90 × 20..70).
        new FixedSizeCrop(new FixedSizeCropOptions { Height = 50, Width = 60 }).Apply(s, new ConstantRandom(1.0));
        Assert.That((s.Height, s.Width), Is.EqualTo((50, 60)));
        Assert.That(s.InstanceCount, Is.Zero);
        Assert.That(s.LabelMap!.All(v => v == 0), Is.True);
    }

    [Test]
    public void FixedSizeCropClipsBoxesToTheWindow()
    {
        var s = RectangleScene.Create();
        // u = 0.5: offsets round(0.5·(120−40)) = 40 and round(0.5·(160−40)) = 60 → window x 60..100, y 40..80.
        new FixedSizeCrop(new FixedSizeCropOptions { Height = 40, Width = 40 }).Apply(s, new ConstantRandom(0.5));
        Assert.That(s.Boxes, Is.EqualTo(new float[] { 0, 0, 30, 30 }), "rectangle 30..90 × 20..70 seen through x 60..100, y 40..80");
        Assert.That(s.Masks![0].Area(), Is.EqualTo(30 * 30));
    }

    [Test]
    public void ACutObjectsBoxIsItsVisiblePart()
    {
        // A diagonal band: pixel (x, y) is set where |x − y| < 4, for x, y in 0..99 (annotated box [0, 0, 100, 100]).
        const int h = 150, w = 200;
        var mask = new byte[h * w];
        for (int y = 0; y < 100; y++)
            for (int x = 0; x < 100; x++)
                if (Math.Abs(x - y) < 4) mask[y * w + x] = 1;
        var s = new DataSample(1, "band", new byte[h * w * 3], h, w)
        {
            Boxes = [0, 0, 100, 100], Labels = [1], IsCrowd = [false], AnnotationIds = [3], Masks = [new InstanceMask(h, w, mask)],
        };
        // Window x 50..200 (u = 1: offset w − 150 = 50), y 0..150: the band's visible part is x 50..99 → 0..49, y 47..99.
        new FixedSizeCrop(new FixedSizeCropOptions { Height = 150, Width = 150 }).Apply(s, new ConstantRandom(1.0));
        Assert.That(s.Boxes, Is.EqualTo(new float[] { 0, 47, 50, 100 }), "the clipped box [0, 0, 50, 100] would be twice as tall as the object");
    }

    [Test]
    public void AnInstanceWhoseMaskIsEmptyIsDroppedEvenWhenNothingIsCut()
    {
        // A mask the downscale emptied (a thin pole), while its box still has an area: the window covers the whole image.
        var s = RectangleScene.Create(height: 40, width: 40, x0: 10, y0: 10, x1: 20, y1: 20);
        s.Masks![0] = new InstanceMask(40, 40, new byte[40 * 40]);
        new FixedSizeCrop(new FixedSizeCropOptions { Height = 64, Width = 64 }).Apply(s, new ConstantRandom(0.5));
        Assert.That(s.InstanceCount, Is.Zero);
    }

    [Test]
    public void FlippingTwiceRestoresEverything()
    {
        var original = RectangleScene.Create(x0: 11, x1: 57);
        var s = RectangleScene.Create(x0: 11, x1: 57);
        var flip = new RandomFlip(new RandomFlipOptions { Prob = 1 });
        flip.Apply(s, new Random(1));
        Assert.That(s.Flipped, Is.True);
        Assert.That(s.Boxes, Is.EqualTo(new float[] { 160 - 57, 20, 160 - 11, 70 }), "x → width − x");
        Assert.That(s.Image, Is.Not.EqualTo(original.Image));
        flip.Apply(s, new Random(2));
        Assert.That(s.Flipped, Is.False);
        Assert.That(s.Image, Is.EqualTo(original.Image));
        Assert.That(s.Boxes, Is.EqualTo(original.Boxes));
        Assert.That(s.Masks![0].Pixels, Is.EqualTo(original.Masks![0].Pixels));
        Assert.That(s.LabelMap, Is.EqualTo(original.LabelMap));
    }

    [Test]
    public void RandomCropTakesAWindowInsideTheImageAndCoversAllOffsets()
    {
        // Pixel colour encodes its coordinates, so the crop reveals its own offset.
        int h = 120, w = 160;
        var minOffset = (X: int.MaxValue, Y: int.MaxValue);
        var maxOffset = (X: -1, Y: -1);
        for (int seed = 0; seed < 400; seed++)
        {
            var s = CoordinateImage(h, w);
            // The image alone, no object: a strict crop would give it up (mmdet's), and this checks the window only.
            new RandomCrop(new RandomCropOptions { Height = 64, Width = 64, AllowNegativeCrop = true }).Apply(s, new Random(seed));
            Assert.That((s.Height, s.Width), Is.EqualTo((64, 64)));
            int x0 = s.Image[0], y0 = s.Image[1];
            Assert.That(x0, Is.InRange(0, w - 64));
            Assert.That(y0, Is.InRange(0, h - 64));
            Assert.That((s.Image[3 * (63 * 64 + 63)], s.Image[3 * (63 * 64 + 63) + 1]), Is.EqualTo((x0 + 63, y0 + 63)), "a contiguous window");
            minOffset = (Math.Min(minOffset.X, x0), Math.Min(minOffset.Y, y0));
            maxOffset = (Math.Max(maxOffset.X, x0), Math.Max(maxOffset.Y, y0));
        }
        Assert.That(minOffset.X, Is.LessThanOrEqualTo(3));
        Assert.That(minOffset.Y, Is.LessThanOrEqualTo(3));
        Assert.That(maxOffset.X, Is.GreaterThanOrEqualTo(w - 64 - 3));
        Assert.That(maxOffset.Y, Is.GreaterThanOrEqualTo(h - 64 - 3));
    }

    [Test]
    public void RandomCropLargerThanTheImageKeepsTheWholeImage()
    {
        var s = RectangleScene.Create(height: 40, width: 50, x0: 5, y0: 5, x1: 20, y1: 20);
        new RandomCrop(new RandomCropOptions { Height = 64, Width = 64 }).Apply(s, new Random(3));
        Assert.That((s.Height, s.Width), Is.EqualTo((40, 50)));
        Assert.That(s.Boxes, Is.EqualTo(new float[] { 5, 5, 20, 20 }));
    }

    private static DataSample CoordinateImage(int h, int w)
    {
        var img = new byte[h * w * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) { img[3 * (y * w + x)] = (byte)x; img[3 * (y * w + x) + 1] = (byte)y; }
        return new DataSample(0, "coords", img, h, w);
    }

    /// <summary>
    /// Class 1 fills the bottom-right quadrant of class 0, a strip is ignore (255). For a uniformly
    /// placed half-size window only about a third of windows keep every class under 75 %, so without the
    /// retry most crops violate it, and with 10 retries (all failing with probability ≈ 0.6^11) almost none.
    /// </summary>
    [Test]
    public void CatMaxRatioIsRespectedOverManySeeds()
    {
        const int size = 200, crop = 100;
        var labels = new ushort[size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                labels[y * size + x] = y < 10 ? (ushort)255 : (x >= 100 && y >= 100 ? (ushort)1 : (ushort)0);
        int Violations(double ratio)
        {
            int bad = 0;
            for (int seed = 0; seed < 300; seed++)
            {
                var s = new DataSample(0, "cat", new byte[size * size * 3], size, size) { LabelMap = (ushort[])labels.Clone() };
                new RandomCrop(new RandomCropOptions { Height = crop, Width = crop, CatMaxRatio = ratio }).Apply(s, new Random(seed));
                int c0 = s.LabelMap!.Count(v => v == 0), c1 = s.LabelMap!.Count(v => v == 1);
                if (!(c0 > 0 && c1 > 0 && Math.Max(c0, c1) < 0.75 * (c0 + c1))) bad++;
            }
            return bad;
        }
        int withRetry = Violations(0.75), without = Violations(1.0);
        Assert.That(without, Is.GreaterThan(150), "the fixture must make most plain crops unbalanced");
        Assert.That(withRetry, Is.LessThanOrEqualTo(8), $"cat_max_ratio 0.75 still gave {withRetry}/300 unbalanced crops");
    }

    [Test]
    public void FlipRateMatchesItsProbability()
    {
        var flip = new RandomFlip(new RandomFlipOptions { Prob = 0.3 });
        int flipped = 0;
        for (int seed = 0; seed < 2000; seed++)
        {
            var s = new DataSample(0, "tiny", new byte[2 * 2 * 3], 2, 2);
            flip.Apply(s, new Random(seed));
            if (s.Flipped) flipped++;
        }
        // Binomial(2000, 0.3): mean 600, sd ≈ 20.5; allow 4 sd.
        Assert.That(flipped, Is.InRange(600 - 82, 600 + 82));
    }

    [Test]
    public void ResizeRatioRangeCoversTheWholeRange()
    {
        var resize = new Resize(new ResizeOptions { Scales = [[256, 64]], RatioRange = [0.5, 2.0] });
        var sides = new List<int>();
        for (int seed = 0; seed < 400; seed++)
        {
            var s = new DataSample(0, "sq", new byte[64 * 64 * 3], 64, 64);
            resize.Apply(s, new Random(seed));
            Assert.That(s.Height, Is.EqualTo(s.Width), "keep ratio");
            Assert.That(s.ScaleX, Is.EqualTo(s.Width / 64.0).Within(1e-9));
            sides.Add(s.Width);
        }
        // Scale factor = min(256r/64, 64r/64) = r ∈ [0.5, 2] → side ∈ [32, 128], uniform-ish.
        Assert.That(sides.Min(), Is.InRange(32, 36));
        Assert.That(sides.Max(), Is.InRange(124, 128));
        Assert.That(sides.Average(), Is.EqualTo(80).Within(5));
    }

    [Test]
    public void ResizeKeepRatioFitsLongAndShortEdges()
    {
        // 100×300 (h×w) into (2048, 512): factor = min(2048/300, 512/100) = 5.12 → 512×1536.
        var s = new DataSample(0, "wide", new byte[100 * 300 * 3], 100, 300);
        new Resize(new ResizeOptions { Scales = [[2048, 512]] }).Apply(s, new Random(0));
        Assert.That((s.Height, s.Width), Is.EqualTo((512, 1536)));
        // 100×1000 into (2048, 512): factor = min(2048/1000, 512/100) = 2.048 → 205×2048.
        s = new DataSample(0, "very wide", new byte[100 * 1000 * 3], 100, 1000);
        new Resize(new ResizeOptions { Scales = [[2048, 512]] }).Apply(s, new Random(0));
        Assert.That((s.Height, s.Width), Is.EqualTo((205, 2048)));
    }

    [Test]
    public void ResizeScaleCoversItsJitterRange()
    {
        var jitter = new ResizeScale(new ResizeScaleOptions { MinScale = 0.1, MaxScale = 2.0, TargetHeight = 100, TargetWidth = 100 });
        var widths = new List<int>();
        for (int seed = 0; seed < 400; seed++)
        {
            var s = new DataSample(0, "r", new byte[50 * 100 * 3], 50, 100);
            jitter.Apply(s, new Random(seed));
            // factor = min(100r/50, 100r/100) = r → width = round(100 r), height = round(50 r).
            Assert.That(s.Height, Is.EqualTo(s.Width / 2.0).Within(1));
            widths.Add(s.Width);
        }
        Assert.That(widths.Min(), Is.InRange(10, 14));
        Assert.That(widths.Max(), Is.InRange(196, 200));
    }

    [Test]
    public void PadFillsImageWithZeroLabelsWithIgnoreAndMasksWithZero()
    {
        var s = RectangleScene.Create(height: 10, width: 13, x0: 2, y0: 2, x1: 13, y1: 10);
        new Pad(new PadOptions { SizeDivisor = 8 }).Apply(s, new Random(0));
        Assert.That((s.Height, s.Width, s.ContentHeight, s.ContentWidth), Is.EqualTo((16, 16, 10, 13)));
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
            {
                int p = y * 16 + x;
                bool padded = y >= 10 || x >= 13;
                if (!padded) continue;
                Assert.That(s.LabelMap![p], Is.EqualTo(255), $"label pad at ({x},{y})");
                Assert.That(s.Masks![0].Pixels[p], Is.EqualTo(0));
                Assert.That(s.Image[3 * p] + s.Image[3 * p + 1] + s.Image[3 * p + 2], Is.Zero);
            }
        Assert.That(s.LabelMap![9 * 16 + 12], Is.EqualTo(2), "content keeps its labels");
        Assert.That(s.Boxes, Is.EqualTo(new float[] { 2, 2, 13, 10 }));
    }

    [Test]
    public void PadAfterNormalizePadsTheFloatImageWithTheFillValue()
    {
        var s = RectangleScene.Create(height: 10, width: 12, x0: 1, y0: 1, x1: 5, y1: 5);
        new Normalize(new NormalizeOptions()).Apply(s, new Random(0));
        new Pad(new PadOptions { Size = [16, 20] }).Apply(s, new Random(0));
        var chw = s.NormalizedImage!;
        Assert.That(chw.Length, Is.EqualTo(3 * 16 * 20));
        Assert.That(chw[(2 * 16 + 15) * 20 + 19], Is.Zero);
        // Grey 60 in the red channel: (60 − 123.675) / 58.395.
        Assert.That(chw[0 * 320 + 9 * 20 + 11], Is.EqualTo((60 - 123.675) / 58.395).Within(1e-5));
        Assert.Throws<InvalidOperationException>(() => new Pad(new PadOptions { Size = [8, 8] }).Apply(s, new Random(0)));
    }

    [Test]
    public void NormalizeUsesRgbMeanAndStdIntoChw()
    {
        var s = new DataSample(0, "px", [10, 20, 30, 200, 100, 0], 1, 2);
        new Normalize(new NormalizeOptions { Mean = [10, 20, 30], Std = [2, 4, 5] }).Apply(s, new Random(0));
        Assert.That(s.NormalizedImage, Is.EqualTo(new float[] { 0, 95, 0, 20, 0, -6 }).Within(1e-6f));
        Assert.Throws<InvalidOperationException>(() => new RandomFlip(new RandomFlipOptions { Prob = 1 }).Apply(s, new Random(0)),
            "geometric transforms after Normalize would leave the float image stale");
    }

    [Test]
    public void PhotoMetricDistortionLeavesGeometryAloneAndBrightnessShiftsUniformly()
    {
        var brightnessOnly = new PhotoMetricDistortion(new PhotoMetricDistortionOptions
        {
            BrightnessDelta = 32, ContrastRange = [1, 1], SaturationRange = [1, 1], HueDelta = 0,
        });
        int changed = 0;
        for (int seed = 0; seed < 400; seed++)
        {
            var original = RectangleScene.Create(height: 12, width: 16, x0: 2, y0: 2, x1: 9, y1: 9);
            var s = RectangleScene.Create(height: 12, width: 16, x0: 2, y0: 2, x1: 9, y1: 9);
            brightnessOnly.Apply(s, new Random(seed));
            Assert.That(s.Boxes, Is.EqualTo(original.Boxes));
            Assert.That(s.LabelMap, Is.EqualTo(original.LabelMap));
            // Grey (60) pixels never clip for |delta| ≤ 32, so they all move by the same truncated delta.
            int delta = s.Image[0] - original.Image[0];
            Assert.That(Math.Abs(delta), Is.LessThanOrEqualTo(32));
            for (int p = 0; p < 12 * 16; p++)
                if (original.LabelMap![p] == 0)
                    Assert.That(s.Image[3 * p + 1] - original.Image[3 * p + 1], Is.EqualTo(delta), $"seed {seed}: uniform shift");
            if (!s.Image.AsSpan().SequenceEqual(original.Image)) changed++;
        }
        // Applied with probability ½ (delta 0 when applied is rare): Binomial(400, ½) ± 4 sd.
        Assert.That(changed, Is.InRange(200 - 40, 200 + 40));
    }

    [Test]
    public void SaturationAndHueDoNotChangeGreyPixels()
    {
        var colourOnly = new PhotoMetricDistortion(new PhotoMetricDistortionOptions
        {
            BrightnessDelta = 0, ContrastRange = [1, 1], SaturationRange = [0.5, 1.5], HueDelta = 18,
        });
        int colouredChanged = 0;
        for (int seed = 0; seed < 100; seed++)
        {
            var original = RectangleScene.Create(height: 8, width: 8, x0: 0, y0: 0, x1: 4, y1: 8);
            var s = RectangleScene.Create(height: 8, width: 8, x0: 0, y0: 0, x1: 4, y1: 8);
            colourOnly.Apply(s, new Random(seed));
            for (int p = 0; p < 64; p++)
                if (original.LabelMap![p] == 0)
                    Assert.That((s.Image[3 * p], s.Image[3 * p + 1], s.Image[3 * p + 2]), Is.EqualTo(((byte)60, (byte)60, (byte)60)), "grey has no hue or saturation");
            if (s.Image[0] != original.Image[0] || s.Image[1] != original.Image[1] || s.Image[2] != original.Image[2]) colouredChanged++;
        }
        Assert.That(colouredChanged, Is.GreaterThan(40), "the red half must change colour in a good share of seeds");
    }

    [Test]
    public void SameSeedGivesTheSameAugmentation()
    {
        var pipeline = TransformPipeline.SegmentationTraining(64, 64, 320, 80);
        var a = RectangleScene.Create();
        var b = RectangleScene.Create();
        pipeline.Apply(a, new Random(42));
        pipeline.Apply(b, new Random(42));
        Assert.That(a.NormalizedImage, Is.EqualTo(b.NormalizedImage));
        Assert.That(a.LabelMap, Is.EqualTo(b.LabelMap));
        Assert.That(a.NormalizedImage!.Length, Is.EqualTo(3 * 64 * 64));
    }

    [Test]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new Resize(new ResizeOptions { Scales = [] }));
        Assert.Throws<ArgumentException>(() => new Resize(new ResizeOptions { Scales = [[10, 10], [20, 20]], RatioRange = [0.5, 2] }));
        Assert.Throws<ArgumentException>(() => new RandomCrop(new RandomCropOptions { CatMaxRatio = 0 }));
        Assert.Throws<ArgumentException>(() => new RandomFlip(new RandomFlipOptions { Prob = 1.5 }));
        Assert.Throws<ArgumentException>(() => new Pad(new PadOptions()));
        Assert.Throws<ArgumentException>(() => new Normalize(new NormalizeOptions { Std = [1, 0, 1] }));
    }

    /// <summary>A Random whose NextDouble is fixed, to place crops exactly.</summary>
    private sealed class ConstantRandom(double value) : Random
    {
        public override double NextDouble() => Math.Min(value, 1.0);
        protected override double Sample() => Math.Min(value, 1.0);
    }
}
