using NUnit.Framework;
using Vim.Core.Config;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Masks;
using Vim.Data.Transforms;
using static Vim.Tests.Data.CopyPasteTests;

namespace Vim.Tests.Data;

/// <summary>mmdet's RandomAffine: its matrix, the move of pixels, masks and boxes by it, and its place after Mosaic in the loader.</summary>
public class RandomAffineTests
{
    private static void AssertMatrix(double[] actual, double[] expected) => Assert.That(actual, Is.EqualTo(expected).Within(1e-12));

    /// <summary>
    /// translate · shear · rotate · scale by hand: 90° is [[0, −1], [1, 0]]; a 45° x shear [[1, 1], [0, 1]] after it gives
    /// [[1, −1], [1, 0]] (the other order would give [[0, −1], [1, 1]]); scale 2 doubles it; the translation is the last column.
    /// </summary>
    [Test]
    public void TheMatrixComposesTranslateShearRotateScale()
    {
        AssertMatrix(RandomAffine.Matrix(90, 1, 0, 0, 5, -3), [0, -1, 5, 1, 0, -3]);
        AssertMatrix(RandomAffine.Matrix(90, 1, 45, 0, 0, 0), [1, -1, 0, 1, 0, 0]);
        AssertMatrix(RandomAffine.Matrix(90, 2, 45, 0, 0, 0), [2, -2, 0, 2, 0, 0]);
        AssertMatrix(RandomAffine.Matrix(0, 1, 0, 45, 0, 0), [1, 0, 0, 1, 1, 0]);
    }

    private static RandomAffine Affine(RandomAffineOptions? options = null) => new(options ?? new RandomAffineOptions { BorderVal = 0 });

    /// <summary>
    /// (x, y) → (4 − y, x) turns a 4×4 image a quarter clockwise, pixel (i, j) to (3 − j, i): the object x [1, 3) × y [0, 1),
    /// coloured 200, lands at x [3, 4) × y [1, 3), which is its box's move (corners (1, 0) → (4, 1), (3, 1) → (3, 3)), and so
    /// do its RLE mask and its polygon outline.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void PixelsMasksAndBoxesMoveTogether(bool polygons)
    {
        var image = new byte[4 * 4 * 3];
        for (int x = 1; x < 3; x++) image.AsSpan(3 * x, 3).Fill(200);
        IReadOnlyList<double[]> outline = [[1, 0, 3, 0, 3, 1, 1, 1]];
        var sample = new DataSample(1, "quarter", image, 4, 4)
        {
            Boxes = [1, 0, 3, 1], Labels = [0], IsCrowd = [false], AnnotationIds = [5],
            Masks = [polygons ? new InstanceMask(4, 4, () => PolygonRasterizer.FromPolygons(outline, 4, 4).Decode(), outline) : Mask(4, 4, new Rect(1, 0, 3, 1))],
        };

        Affine().Warp(sample, [0, -1, 4, 1, 0, 0], 4, 4);

        var turned = new Rect(3, 1, 4, 3);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                Assert.That(Pixel(sample.Image, 4, y, x), Is.EqualTo(Enumerable.Repeat((byte)(turned.Contains(x, y) ? 200 : 0), 3)), $"pixel ({x}, {y})");
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 3, 1, 4, 3 }).Within(1e-5f));
        var mask = sample.Masks!.Single();
        if (polygons) Assert.That(Outlines.Extent(mask.Outlines!), Is.EqualTo(new float[] { 3, 1, 4, 3 }).Within(1e-5f));
        Assert.That(mask.Pixels, Is.EqualTo(Mask(4, 4, turned).Pixels));
    }

    /// <summary>
    /// A box-only object takes the enclosing box of its moved corners (mmdet's project): [0, 0, 2, 2] turned 45° and moved
    /// 10 right has corners (10, 0), (10 + √2, √2), (10 − √2, √2), (10, 2√2).
    /// </summary>
    [Test]
    public void ABoxOnlyObjectEnclosesItsMovedCorners()
    {
        var sample = new DataSample(1, "box", new byte[20 * 20 * 3], 20, 20) { Boxes = [0, 0, 2, 2], Labels = [0], IsCrowd = [false], AnnotationIds = [5] };
        Affine().Warp(sample, RandomAffine.Matrix(45, 1, 0, 0, 10, 0), 20, 20);
        double r = Math.Sqrt(2);
        Assert.That(sample.Boxes, Is.EqualTo(new[] { (float)(10 - r), 0f, (float)(10 + r), (float)(2 * r) }).Within(1e-4f));
    }

    /// <summary>
    /// With every range closed but the scale ([2, 2]), a 4×4 sample with border [2, 2] becomes 8×8, its box [1, 1, 3, 3]
    /// [2, 2, 6, 6] and the object's inner pixels (3..4)² its colour; border [−1, −1] leaves 2×2.
    /// </summary>
    [Test]
    public void TheDrawnScaleAndTheBorderSetTheOutput()
    {
        var closed = new RandomAffineOptions { MaxRotateDegree = 0, MaxShearDegree = 0, MaxTranslateRatio = 0, ScalingRatioRange = [2, 2], Border = [2, 2], BorderVal = 0 };
        var sample = Scene(4, 4, 1, new Rect(1, 1, 3, 3));
        sample.Masks = null;
        sample.Image.AsSpan().Clear();
        for (int y = 1; y < 3; y++) sample.Image.AsSpan(3 * (y * 4 + 1), 6).Fill(200);

        Affine(closed).Apply(sample, new Random(1));

        Assert.That((sample.Height, sample.Width), Is.EqualTo((8, 8)));
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 2, 2, 6, 6 }));
        foreach (var (x, y) in new[] { (3, 3), (4, 3), (3, 4), (4, 4) }) Assert.That(Pixel(sample.Image, 8, y, x), Is.EqualTo(new byte[] { 200, 200, 200 }));
        Assert.That(Pixel(sample.Image, 8, 0, 0), Is.EqualTo(new byte[] { 0, 0, 0 }));

        var shrunk = Scene(4, 4, 1);
        Affine(closed with { ScalingRatioRange = [1, 1], Border = [-1, -1] }).Apply(shrunk, new Random(1));
        Assert.That((shrunk.Height, shrunk.Width), Is.EqualTo((2, 2)));
    }

    [Test]
    public void BadOptionsAreRefusedNamingTheOption()
    {
        void Refused(RandomAffineOptions options, string start) =>
            Assert.That(Assert.Throws<ArgumentException>(() => new RandomAffine(options))!.Message, Does.StartWith(start));
        Refused(new() { MaxRotateDegree = -1 }, "random_affine max_rotate_degree -1 must be 0 or more degrees");
        Refused(new() { MaxTranslateRatio = 1.5 }, "random_affine max_translate_ratio 1.5 must be in [0, 1]");
        Refused(new() { ScalingRatioRange = [0, 1] }, "random_affine scaling_ratio_range [0, 1] must be [min, max] with 0 < min ≤ max");
        Refused(new() { MaxShearDegree = 90 }, "random_affine max_shear_degree 90 must be in [0, 90)");
        Refused(new() { Border = [1] }, "random_affine border [1] must be [x, y]");
        Refused(new() { BorderVal = 300 }, "random_affine border_val 300 must be 0..255");
        var tiny = Scene(4, 4, 1);
        var e = Assert.Throws<InvalidOperationException>(() => Affine(new RandomAffineOptions { Border = [-2, 0] }).Apply(tiny, new Random(0)))!;
        Assert.That(e.Message, Does.Contain("random_affine border [-2, 0] leaves nothing of a 4x4 image"));
    }

    /// <summary>
    /// mmdet's YOLOX order: the mixing stage runs before the pipeline's random_affine, so 24² tiles make a 48² mosaic that
    /// border [−12, −12] brings to 24² (were the affine run on each tile first, the mosaic would be 48²).
    /// </summary>
    [Test]
    public void AfterAMosaicTheAffineBringsTheCanvasToImgScale()
    {
        var pipeline = new TransformPipeline([new RandomAffine(new RandomAffineOptions { Border = [-12, -12] }), new Normalize(new NormalizeOptions())]);
        var loader = new DataLoader(new RectangleSource(6), pipeline, new LoaderOptions { BatchSize = 2, Kind = BatchKind.Detection, NumWorkers = 0, Seed = 3 },
            [new Mosaic(new MosaicConfig { ImgScale = [24, 24] })]);
        var samples = loader.Samples(0, endless: false).ToList();
        Assert.That(samples.Select(s => (s.Height, s.Width)), Has.All.EqualTo((24, 24)));
    }
}
