using NUnit.Framework;
using Vim.Data.Transforms;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>detectron2's polygon path: outlines cut by crops and rasterised inside each RoI for the mask targets.</summary>
public class PolygonMaskTargetTests
{
    /// <summary>
    /// The triangle (0,0), (10,0), (0,10) cut by the window x ∈ [5, 15], y ∈ [0, 10]: in window coordinates it is
    /// (−5,0), (5,0), (−5,10), whose part right of x = 0 is the triangle (0,0), (5,0), (0,5). An outline wholly outside
    /// the window is dropped.
    /// </summary>
    [Test]
    public void CropKeepsThePartOfEachOutlineInsideTheWindow()
    {
        var cut = Outlines.Crop([[0, 0, 10, 0, 0, 10], [20, 20, 30, 20, 30, 30]], 5, 0, 10, 10);
        Assert.That(cut, Has.Count.EqualTo(1));
        Assert.That(cut[0], Is.EqualTo(new double[] { 0, 0, 5, 0, 0, 5 }));
        Assert.That(Outlines.Extent(cut), Is.EqualTo(new float[] { 0, 0, 5, 5 }));
        // A square around the window is cut to the window itself.
        var around = Outlines.Crop([[-1, -1, 20, -1, 20, 20, -1, 20]], 5, 0, 10, 10);
        Assert.That(Outlines.Extent(around), Is.EqualTo(new float[] { 0, 0, 10, 10 }));
    }

    /// <summary>
    /// As detectron2 filters polygon instances: one whose pixels vanished (a sliver thinner than a pixel) stays while its
    /// outline does, with the outline's extent as its box; one the crop cuts away goes.
    /// </summary>
    [Test]
    public void APolygonInstanceStaysWhileItsOutlineDoes()
    {
        double[] sliver = [10, 10, 30, 10, 30, 10.3, 10, 10.3];
        double[] farRight = [35, 2, 39, 2, 39, 6];
        var sample = new Vim.Data.Datasets.DataSample(1, "a.png", new byte[40 * 40 * 3], 40, 40)
        {
            Boxes = [10, 10, 30, 10.3f, 35, 2, 39, 6], Labels = [0, 1], IsCrowd = [false, false], AnnotationIds = [1, 2],
            Masks =
            [
                new Vim.Data.Datasets.InstanceMask(40, 40, new byte[40 * 40], [sliver]),
                new Vim.Data.Datasets.InstanceMask(40, 40, new byte[40 * 40], [farRight]),
            ],
        };
        SampleGeometry.CropTo(sample, 0, 0, 32, 32);
        Assert.That(sample.InstanceCount, Is.EqualTo(1));
        Assert.That(sample.Labels, Is.EqualTo(new[] { 0 }));
        Assert.That(sample.Boxes[0], Is.EqualTo(10f));
        Assert.That(sample.Boxes[2], Is.EqualTo(30f));
        Assert.That(sample.Boxes[3] - sample.Boxes[1], Is.EqualTo(0.3f).Within(1e-5));
    }

    /// <summary>
    /// An outline lying outside its box's image (an uncut sample) clamps to a zero-area box: dropped, or it would match
    /// every anchor. An outline that only touches the window from outside (what shapely gives as a line) is no outline,
    /// so it does not stretch the box of the instance's other outline.
    /// </summary>
    [Test]
    public void OutlinesWithNoAreaInsideTheImageAreDropped()
    {
        var sample = new Vim.Data.Datasets.DataSample(1, "a.png", new byte[40 * 40 * 3], 40, 40)
        {
            Boxes = [10, 10, 20, 20, 2, 2, 8, 8], Labels = [0, 1], IsCrowd = [false, false], AnnotationIds = [1, 2],
            Masks =
            [
                new Vim.Data.Datasets.InstanceMask(40, 40, new byte[40 * 40], [[-30, 10, -20, 10, -20, 30, -30, 30]]),
                new Vim.Data.Datasets.InstanceMask(40, 40, new byte[40 * 40], [[2, 2, 8, 2, 8, 8, 2, 8], [20, 2, 26, 2, 26, 6, 20, 6]]),
            ],
        };
        SampleGeometry.CropTo(sample, 0, 0, 40, 40);
        Assert.That(sample.Labels, Is.EqualTo(new[] { 1 }));
        var touching = new Vim.Data.Datasets.DataSample(1, "a.png", new byte[40 * 40 * 3], 40, 40)
        {
            Boxes = [2, 2, 26, 8], Labels = [1], IsCrowd = [false], AnnotationIds = [2],
            Masks = [new Vim.Data.Datasets.InstanceMask(40, 40, new byte[40 * 40], [[2, 2, 8, 2, 8, 8, 2, 8], [20, 2, 26, 2, 26, 6, 20, 6]])],
        };
        SampleGeometry.CropTo(touching, 0, 0, 20, 20);
        Assert.That(touching.Masks![0].Outlines, Has.Count.EqualTo(1));
        Assert.That(touching.Boxes, Is.EqualTo(new float[] { 2, 2, 8, 8 }));
    }

    /// <summary>
    /// A polygon instance's bitmap after a transform is its moved outlines rasterised at the new size, drawn only when
    /// read: the full-size bitmap it started from is never decoded, resized or cut.
    /// </summary>
    [Test]
    public void APolygonInstancesPixelsAreItsMovedOutlinesDrawnOnDemand()
    {
        bool decoded = false;
        double[] square = [4, 4, 20, 4, 20, 12, 4, 12];
        var sample = new Vim.Data.Datasets.DataSample(1, "a.png", new byte[40 * 40 * 3], 40, 40)
        {
            Boxes = [4, 4, 20, 12], Labels = [0], IsCrowd = [false], AnnotationIds = [1],
            Masks = [new Vim.Data.Datasets.InstanceMask(40, 40, () => { decoded = true; return new byte[40 * 40]; }, [square])],
        };
        new Resize(new ResizeOptions { Scales = [[20, 20]], KeepRatio = false, Resampling = ImageResampling.PillowBilinear }).Apply(sample, new Random(0));
        new RandomFlip(new RandomFlipOptions { Prob = 1 }).Apply(sample, new Random(0));
        SampleGeometry.CropTo(sample, 0, 5, 20, 15);
        Assert.That(decoded, Is.False);
        // Halved (2..10 × 2..6), mirrored in 20 px (10..18), shifted 5 left (5..13).
        var expected = Vim.Data.Masks.PolygonRasterizer.FromPolygons([[13, 2, 5, 2, 5, 6, 13, 6]], 20, 15).Decode();
        Assert.That(sample.Masks![0].Pixels, Is.EqualTo(expected));
        Assert.That(sample.Masks[0].Pixels.Count(p => p != 0), Is.EqualTo(8 * 4));
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 5, 2, 13, 6 }));
    }

    [Test]
    public void FlipAndScaleMoveEveryPoint()
    {
        Assert.That(Outlines.FlipHorizontal([[1, 2, 3, 4, 5, 6]], 10)![0], Is.EqualTo(new double[] { 9, 2, 7, 4, 5, 6 }));
        Assert.That(Outlines.Scale([[1, 2, 3, 4, 5, 6]], 2, 0.5)![0], Is.EqualTo(new double[] { 2, 1, 6, 2, 10, 3 }));
        Assert.That(Outlines.Scale(null, 2, 2), Is.Null, "an RLE instance has no outlines");
    }

    /// <summary>
    /// A rectangle over the left half of a 28×28 box [10, 20, 38, 48]: moved to the box corner it spans x ∈ [0, 14],
    /// which covers the pixel centres 0.5 … 13.5: the left 14 columns, every row (pycocotools' rasterisation).
    /// </summary>
    [Test]
    public void OutlinesAreRasterisedInsideTheRoi()
    {
        var drawn = MaskTargets.RasterizeInBox([[10, 20, 24, 20, 24, 48, 10, 48]], 10, 20, 38, 48, 28);
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
                Assert.That(drawn[y * 28 + x], Is.EqualTo(x < 14 ? 1 : 0), $"({x}, {y})");
        // A box twice as wide stretches x by ½: the same rectangle then covers 7 columns.
        var wide = MaskTargets.RasterizeInBox([[10, 20, 24, 20, 24, 48, 10, 48]], 10, 20, 66, 48, 28);
        Assert.That(Enumerable.Range(0, 28).Count(x => wide[x] == 1), Is.EqualTo(7));
    }

    /// <summary>RoIs of a polygon instance take the outline rasterisation, RoIs of an RLE instance the sampled bitmap.</summary>
    [Test]
    public void EachRoiUsesItsGroundTruthsOwnForm()
    {
        using var scope = NewDisposeScope();
        var bitmaps = zeros(new long[] { 2, 40, 40 }, ScalarType.Byte);
        bitmaps[0, 5..15, 5..15] = tensor((byte)1);
        bitmaps[1, 20..40, 20..30] = tensor((byte)1);
        IReadOnlyList<double[]>?[] outlines = [null, [[20, 20, 30, 20, 30, 40, 20, 40]]];
        var boxes = tensor(new float[] { 0, 0, 20, 20, 20, 20, 40, 40 }).view(2, 4);
        var owners = tensor(new long[] { 0, 1 });
        var targets = MaskTargets.ForRois(bitmaps, outlines, boxes, owners, 8);
        var fromBitmaps = MaskTargets.CropAndResize(bitmaps, boxes, owners, 8);
        Assert.That(targets[0].equal(fromBitmaps[0]).all().item<bool>(), Is.True, "the RLE instance's RoI");
        var expected = MaskTargets.RasterizeInBox(outlines[1]!, 20, 20, 40, 40, 8).Select(v => v != 0).ToArray();
        Assert.That(targets[1].flatten().data<bool>().ToArray(), Is.EqualTo(expected), "the polygon instance's RoI");
        // Its outline covers the left half of the box: columns 0–3 of 8.
        Assert.That(expected.Select((v, i) => v == (i % 8 < 4)).All(same => same), Is.True);
    }
}
