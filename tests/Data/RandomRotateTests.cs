using NUnit.Framework;
using Vim.Data.Datasets;
using Vim.Data.Masks;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

/// <summary>
/// random_rotate against rotations worked out by hand: mmcv.imrotate turns positive angles clockwise on screen (y down), so
/// a quarter turn about the middle of a square image is a transpose followed by a left–right mirror.
/// </summary>
public class RandomRotateTests
{
    private static RandomRotate Exactly(double degrees, bool autoBound = false) =>
        new(new RandomRotateOptions { Prob = 1, Degree = [degrees, degrees], AutoBound = autoBound });

    /// <summary>An image and label map whose every pixel differs from its neighbours, so any misplaced pixel shows.</summary>
    private static DataSample Numbered(int height, int width)
    {
        var image = new byte[height * width * 3];
        var labels = new ushort[height * width];
        for (int p = 0; p < height * width; p++)
        {
            for (int c = 0; c < 3; c++) image[3 * p + c] = (byte)((p * 7 + c * 50) % 251);
            labels[p] = (ushort)(p % 200);
        }
        return new DataSample(1, "numbered", image, height, width) { LabelMap = labels };
    }

    /// <summary>out(row, col) = in(row of <paramref name="source"/>(row, col)), per channel.</summary>
    private static T[] Rearranged<T>(T[] pixels, int width, int channels, int outHeight, int outWidth, Func<int, int, (int Row, int Col)> source)
    {
        var result = new T[outHeight * outWidth * channels];
        for (int r = 0; r < outHeight; r++)
            for (int k = 0; k < outWidth; k++)
            {
                var (sr, sk) = source(r, k);
                for (int c = 0; c < channels; c++) result[(r * outWidth + k) * channels + c] = pixels[(sr * width + sk) * channels + c];
            }
        return result;
    }

    [TestCase(7)]
    [TestCase(6)]
    public void AQuarterTurnIsATransposeThenAMirrorAndAHalfTurnIsBothFlips(int n)
    {
        var original = Numbered(n, n);
        var quarter = original.Copy();
        Exactly(90).Apply(quarter, new Random(0));
        // Transposed: t(r, k) = in(k, r); mirrored left–right: out(r, k) = t(r, n − 1 − k) = in(n − 1 − k, r).
        Assert.That(quarter.Image, Is.EqualTo(Rearranged(original.Image, n, 3, n, n, (r, k) => (n - 1 - k, r))), "image, 90° clockwise");
        Assert.That(quarter.LabelMap, Is.EqualTo(Rearranged(original.LabelMap!, n, 1, n, n, (r, k) => (n - 1 - k, r))), "labels, 90° clockwise");

        var half = original.Copy();
        Exactly(180).Apply(half, new Random(0));
        Assert.That(half.Image, Is.EqualTo(Rearranged(original.Image, n, 3, n, n, (r, k) => (n - 1 - r, n - 1 - k))), "image, 180°");
        Assert.That(half.LabelMap, Is.EqualTo(Rearranged(original.LabelMap!, n, 1, n, n, (r, k) => (n - 1 - r, n - 1 - k))), "labels, 180°");

        var back = original.Copy();
        Exactly(-90).Apply(back, new Random(0));
        // Counter-clockwise: out(r, k) = in(k, n − 1 − r).
        Assert.That(back.Image, Is.EqualTo(Rearranged(original.Image, n, 3, n, n, (r, k) => (k, n - 1 - r))), "image, 90° counter-clockwise");
    }

    [Test]
    public void AutoBoundTurnsAWideImageIntoATallOneHoldingEveryPixel()
    {
        // 4 rows × 6 columns: mmcv's bound is h·|sin| + w·|cos| = 4 wide and 6 tall, the centre moved by (−1, +1).
        var original = Numbered(4, 6);
        var turned = original.Copy();
        Exactly(90, autoBound: true).Apply(turned, new Random(0));
        Assert.That((turned.Height, turned.Width, turned.ContentHeight, turned.ContentWidth), Is.EqualTo((6, 4, 6, 4)));
        Assert.That(turned.Image, Is.EqualTo(Rearranged(original.Image, 6, 3, 6, 4, (r, k) => (3 - k, r))));
        Assert.That(turned.LabelMap, Is.EqualTo(Rearranged(original.LabelMap!, 6, 1, 6, 4, (r, k) => (3 - k, r))));
    }

    [Test]
    public void ASingleLabelledPixelLandsWhereTheHandRotationPutsIt()
    {
        // 21×21, centre (10, 10); the pixel x = 17, y = 14 is (7, 4) from it. Turned 30° clockwise on screen:
        // x' = 7·cos30° − 4·sin30° = 4.06, y' = 7·sin30° + 4·cos30° = 6.96, so it lands on pixel (14, 17). Nearest neighbour
        // samples the source at each output pixel: (14, 17) reads (16.96, 14.06) → (17, 14), and no other output pixel
        // rounds to it (its neighbours read (17.8, 13.6), (16.1, 13.6), (16.6, 15.0), …).
        const int n = 21;
        var labels = new ushort[n * n];
        labels[14 * n + 17] = 5;
        var sample = new DataSample(1, "dot", new byte[n * n * 3], n, n) { LabelMap = labels };
        Exactly(30).Apply(sample, new Random(0));
        var marked = Enumerable.Range(0, n * n).Where(p => sample.LabelMap![p] == 5).Select(p => (X: p % n, Y: p / n)).ToList();
        Assert.That(marked, Is.EqualTo(new[] { (14, 17) }), "counter-clockwise would have put it at (18, 10)");
        Assert.That(sample.LabelMap![0], Is.EqualTo(255), "a corner the rotated image leaves uncovered gets seg_pad_val (255 by default)");
        Assert.That(sample.LabelMap[n / 2 * n + n / 2], Is.Zero);
    }

    [Test]
    public void ARotatedRectangleMasksBoxIsTheHandComputedOne()
    {
        // 100×100, rectangle x 30..89, y 20..69. 90° clockwise about (49.5, 49.5): pixel (x, y) → (99 − y, x), so
        // x' = 30..79 and y' = 30..89: box [30, 30, 80, 90].
        var sample = RectangleScene.Create(height: 100, width: 100, x0: 30, y0: 20, x1: 90, y1: 70);
        Exactly(90).Apply(sample, new Random(0));
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 30, 30, 80, 90 }));
        var mask = sample.Masks![0];
        Assert.That(mask.Area(), Is.EqualTo(60 * 50));
        Assert.That(RectangleScene.Bounds(mask.Pixels, 100, 100, p => mask.Pixels[p] != 0), Is.EqualTo((30, 30, 80, 90)));
        Assert.That(Enumerable.Range(0, 100 * 100).All(p => (sample.LabelMap![p] == 2) == (mask.Pixels[p] != 0)), Is.True);
    }

    [Test]
    public void ABoxWithoutAMaskBecomesTheEnclosingBoxOfItsTurnedCorners()
    {
        // The square [40, 60]² about the image's centre (50, 50) turned 45°: its corners reach 10·√2 from the centre on each axis.
        var sample = new DataSample(1, "box", new byte[100 * 100 * 3], 100, 100)
        {
            Boxes = [40, 40, 60, 60, 80, 10, 90, 20], Labels = [1, 2], IsCrowd = [false, false], AnnotationIds = [11, 12],
        };
        Exactly(45).Apply(sample, new Random(0));
        double r = 10 * Math.Sqrt(2);
        Assert.That(sample.InstanceCount, Is.EqualTo(2));
        Assert.That(sample.Boxes.Take(4).Select(v => (double)v), Is.EqualTo(new[] { 50 - r, 50 - r, 50 + r, 50 + r }).Within(1e-4));
        // The second box [80, 10, 90, 20] spans (30..40, −40..−30) from the centre. Turned 45° clockwise a corner (dx, dy)
        // goes to ((dx − dy)/√2, (dx + dy)/√2): x' from 60/√2 to 80/√2 (past the right border, clipped to 100), y' ±10/√2.
        Assert.That(sample.Boxes.Skip(4).Select(v => (double)v),
            Is.EqualTo(new[] { 50 + 60 / Math.Sqrt(2), 50 - 10 / Math.Sqrt(2), 100, 50 + 10 / Math.Sqrt(2) }).Within(1e-4));
    }

    [Test]
    public void APolygonInstancesOutlinesTurnExactlyAndGiveItsBox()
    {
        double[] rectangle = [30, 20, 90, 20, 90, 70, 30, 70];
        var sample = new DataSample(1, "polygon", new byte[100 * 100 * 3], 100, 100)
        {
            Boxes = [30, 20, 90, 70], Labels = [1], IsCrowd = [false], AnnotationIds = [5],
            Masks = [new InstanceMask(100, 100, () => PolygonRasterizer.FromPolygons([rectangle], 100, 100).Decode(), [rectangle])],
        };
        Exactly(90).Apply(sample, new Random(0));
        // In continuous coordinates (pixel i spans [i, i + 1)) the quarter turn about (50, 50) maps (x, y) → (100 − y, x).
        var outline = sample.Masks![0].Outlines!.Single();
        var corners = Enumerable.Range(0, outline.Length / 2).Select(i => (outline[2 * i], outline[2 * i + 1])).ToHashSet();
        var expected = new[] { (80.0, 30.0), (80.0, 90.0), (30.0, 90.0), (30.0, 30.0) };
        foreach (var (x, y) in expected)
            Assert.That(corners.Any(c => Math.Abs(c.Item1 - x) < 1e-9 && Math.Abs(c.Item2 - y) < 1e-9), Is.True, $"corner ({x}, {y}) in [{string.Join(", ", outline)}]");
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 30, 30, 80, 90 }));
        Assert.That(sample.Masks[0].Area(), Is.EqualTo(50 * 60));
    }

    [Test]
    public void InstancesTurnedOutOfTheImageAreDropped()
    {
        // A 5×5 object in the top-left corner of a 100×100 image: 45° about the centre sends it above the top edge (its
        // nearest corner (5, 5) goes to y' = 50 − 45·√2 < 0). The object in the middle stays.
        var masks = new List<InstanceMask>();
        foreach (var (x0, y0) in new[] { (0, 0), (45, 45) })
        {
            var pixels = new byte[100 * 100];
            for (int y = y0; y < y0 + 5; y++)
                for (int x = x0; x < x0 + 5; x++) pixels[y * 100 + x] = 1;
            masks.Add(new InstanceMask(100, 100, pixels));
        }
        DataSample Make(bool withMasks) => new(1, "corner", new byte[100 * 100 * 3], 100, 100)
        {
            Boxes = [0, 0, 5, 5, 45, 45, 50, 50], Labels = [3, 4], IsCrowd = [false, false], AnnotationIds = [1, 2],
            Masks = withMasks ? [.. masks] : null,
        };
        foreach (bool withMasks in new[] { true, false })
        {
            var sample = Make(withMasks);
            Exactly(45).Apply(sample, new Random(0));
            Assert.That(sample.Labels, Is.EqualTo(new[] { 4 }), withMasks ? "masks" : "boxes only");
            Assert.That(sample.AnnotationIds, Is.EqualTo(new long[] { 2 }));
            Assert.That(sample.Masks?.Count, Is.EqualTo(withMasks ? 1 : null));
        }
    }

    [Test]
    public void AnglesCoverTheDegreeRangeAndTheSameSeedRepeatsThem()
    {
        // A 10° range on a 41×41 dot: the dot's landing spot reveals the angle, which must vary over seeds and repeat per seed.
        var rotate = new RandomRotate(new RandomRotateOptions { Prob = 1, Degree = [10] });
        var spots = new HashSet<int>();
        for (int seed = 0; seed < 30; seed++)
        {
            int Landing()
            {
                var labels = new ushort[41 * 41];
                labels[20 * 41 + 40] = 9;
                var sample = new DataSample(1, "dot", new byte[41 * 41 * 3], 41, 41) { LabelMap = labels };
                rotate.Apply(sample, new Random(seed));
                return Array.IndexOf(sample.LabelMap!, (ushort)9);
            }
            int spot = Landing();
            Assert.That(Landing(), Is.EqualTo(spot), $"seed {seed}");
            // 20 px from the centre turned by at most 10°: at most 20·sin 10° ≈ 3.5 rows up or down.
            if (spot >= 0) Assert.That(Math.Abs(spot / 41 - 20), Is.LessThanOrEqualTo(4), $"seed {seed}");
            spots.Add(spot);
        }
        Assert.That(spots.Count, Is.GreaterThanOrEqualTo(4), "angles drawn from [-10, 10] must reach several rows");
    }

    [Test]
    public void BadOptionsNameTheOption()
    {
        string Error(RandomRotateOptions options) => Assert.Throws<ArgumentException>(() => new RandomRotate(options))!.Message;
        Assert.That(Error(new RandomRotateOptions { Prob = -0.5, Degree = [10] }), Does.Contain("prob -0.5"));
        Assert.That(Error(new RandomRotateOptions { Degree = [10] }), Does.Contain("needs prob"));
        Assert.That(Error(new RandomRotateOptions { Prob = 0.5 }), Does.Contain("needs degree"));
        Assert.That(Error(new RandomRotateOptions { Prob = 0.5, Degree = [0] }), Does.Contain("degree 0"));
        Assert.That(Error(new RandomRotateOptions { Prob = 0.5, Degree = [1, 2, 3] }), Does.Contain("degree [1, 2, 3]"));
        Assert.That(Error(new RandomRotateOptions { Prob = 0.5, Degree = [10], PadVal = 256 }), Does.Contain("pad_val 256"));
        Assert.That(Error(new RandomRotateOptions { Prob = 0.5, Degree = [10], SegPadVal = -1 }), Does.Contain("seg_pad_val -1"));
        Assert.That(Error(new RandomRotateOptions { Prob = 0.5, Degree = [10], Center = [1] }), Does.Contain("center [1]"));
        Assert.That(Error(new RandomRotateOptions { Prob = 0.5, Degree = [10], Center = [1, 1], AutoBound = true }), Does.Contain("auto_bound").And.Contain("center"));
    }
}
