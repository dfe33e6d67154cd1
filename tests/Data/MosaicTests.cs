using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;
using Vim.Data.Masks;
using Vim.Data.Transforms;
using static Vim.Tests.Data.CopyPasteTests;

namespace Vim.Tests.Data;

/// <summary>
/// mmdet's Mosaic on hand-made samples whose pixels say where they come from (<see cref="CopyPasteTests.Scene"/>): tiles of
/// 20×16 (img_scale [20, 16], a 40×32 canvas) around the centre (15, 12), placements and boxes worked out by hand from
/// mmdet's _mosaic_combine.
/// </summary>
public class MosaicTests
{
    private const int CanvasW = 40, CanvasH = 32, CenterX = 15, CenterY = 12;
    private static readonly Rect Partial = new(2, 3, 8, 9), Outside = new(0, 0, 4, 3), Inside = new(16, 13, 20, 16);

    private static Mosaic Mosaic(bool clip = true, double prob = 1, double[]? centerRange = null) => new(new MosaicConfig
    {
        ImgScale = [20, 16], BboxClipBorder = clip, Prob = prob, CenterRatioRange = [.. centerRange ?? [0.5, 1.5]],
    });

    /// <summary>
    /// The destination (16×20, tag 1) and three partners: A 16×12 (tag 2), B 10×20 (tag 3), both already of tile size, and
    /// C 8×10 (tag 4), which the fit doubles to 16×20.
    /// </summary>
    private static (DataSample Destination, DataSample[] Partners) Tiles() =>
        (Scene(16, 20, 1, Partial, Outside, Inside),
         [Scene(16, 12, 2, new Rect(1, 2, 5, 6)), Scene(10, 20, 3, new Rect(0, 0, 20, 10)), Scene(8, 10, 4, new Rect(1, 1, 4, 3))]);

    /// <summary>The canvas boxes by hand: each tile's box moved by its offset, then clipped to the 40×32 canvas.</summary>
    private static readonly Rect[] ExpectedBoxes =
    [
        new(0, 0, 3, 5),       // destination's [2, 3, 8, 9] moved by (15 − 20, 12 − 16) = (−5, −4) to [−3, −1, 3, 5], clipped
        new(11, 9, 15, 12),    // destination's [16, 13, 20, 16], moved, inside
        new(16, 0, 20, 2),     // A's [1, 2, 5, 6] moved by (15, 12 − 16) = (15, −4) to [16, −2, 20, 2], clipped
        new(0, 12, 15, 22),    // B's [0, 0, 20, 10] moved by (15 − 20, 12) = (−5, 12) to [−5, 12, 15, 22], clipped
        new(17, 14, 23, 18),   // C's [1, 1, 4, 3] doubled to [2, 2, 8, 6], moved by (15, 12)
    ];

    private static readonly long[] ExpectedIds = [100, 102, 200, 300, 400]; // 101 ([0, 0, 4, 3] → [−5, −4, −1, −1]) lies off the canvas

    private static float[] Flat(IEnumerable<Rect> rects) => rects.SelectMany(r => new float[] { r.X0, r.Y0, r.X1, r.Y1 }).ToArray();

    /// <summary>
    /// Each quadrant holds its tile's pixels at its place, the rest of the canvas is pad_val; boxes are moved, clipped, the
    /// one off the canvas dropped; RLE masks moved with the pixels.
    /// </summary>
    [Test]
    public void EachQuadrantHoldsItsTileAndBoxesAreMovedClippedOrDropped()
    {
        var (destination, partners) = Tiles();
        var sources = new[] { destination, partners[0], partners[1] }.Select(s => ((byte[])s.Image.Clone(), s.Width)).ToArray();

        Mosaic().Place(destination, partners, CenterX, CenterY);

        Assert.That((destination.Height, destination.Width, destination.ContentHeight, destination.ContentWidth), Is.EqualTo((CanvasH, CanvasW, CanvasH, CanvasW)));
        for (int y = 0; y < CanvasH; y++)
            for (int x = 0; x < CanvasW; x++)
            {
                var pixel = Pixel(destination.Image, CanvasW, y, x);
                string where = $"pixel ({x}, {y})";
                if (x < 15 && y < 12) Assert.That(pixel, Is.EqualTo(Pixel(sources[0].Item1, 20, y + 4, x + 5)), where);
                else if (x >= 15 && x < 27 && y < 12) Assert.That(pixel, Is.EqualTo(Pixel(sources[1].Item1, 12, y + 4, x - 15)), where);
                else if (x < 15 && y >= 12 && y < 22) Assert.That(pixel, Is.EqualTo(Pixel(sources[2].Item1, 20, y - 12, x + 5)), where);
                else if (x >= 15 && x < 35 && y >= 12 && y < 28) Assert.That(pixel[2], Is.EqualTo(4), where + ": C's tag, resized");
                else Assert.That(pixel, Is.EqualTo(new byte[] { 114, 114, 114 }), where + ": pad_val");
            }
        Assert.That(destination.Boxes, Is.EqualTo(Flat(ExpectedBoxes)));
        Assert.That(destination.AnnotationIds, Is.EqualTo(ExpectedIds));
        Assert.That(destination.Labels, Is.EqualTo(new[] { 0, 2, 0, 0, 0 }));
        Assert.That(destination.Masks!.Select(m => m.Pixels), Is.EqualTo(ExpectedBoxes.Select(r => Mask(CanvasH, CanvasW, r).Pixels)),
            "each rectangle object's mask is its box's pixels");
    }

    private static InstanceMask Polygon(int height, int width, Rect r)
    {
        IReadOnlyList<double[]> outlines = [[r.X0, r.Y0, r.X1, r.Y0, r.X1, r.Y1, r.X0, r.Y1]];
        return new InstanceMask(height, width, () => PolygonRasterizer.FromPolygons(outlines, height, width).Decode(), outlines);
    }

    private static void WithPolygons(DataSample sample, params Rect[] rects) =>
        sample.Masks = rects.Select(r => Polygon(sample.Height, sample.Width, r)).ToList();

    /// <summary>
    /// Polygon objects (the same rectangles as outlines) are scaled, moved and cut exactly: each outline's extent is its
    /// canvas box, and its pixels are those of the hand-placed rectangle outline.
    /// </summary>
    [Test]
    public void PolygonOutlinesMoveExactlyWithTheirTiles()
    {
        var (destination, partners) = Tiles();
        WithPolygons(destination, Partial, Outside, Inside);
        WithPolygons(partners[0], new Rect(1, 2, 5, 6));
        WithPolygons(partners[1], new Rect(0, 0, 20, 10));
        WithPolygons(partners[2], new Rect(1, 1, 4, 3));

        Mosaic().Place(destination, partners, CenterX, CenterY);

        Assert.That(destination.AnnotationIds, Is.EqualTo(ExpectedIds));
        for (int i = 0; i < ExpectedBoxes.Length; i++)
        {
            var mask = destination.Masks![i];
            Assert.That(mask.Outlines, Is.Not.Null, "still polygons");
            Assert.That(Outlines.Extent(mask.Outlines!), Is.EqualTo(Flat([ExpectedBoxes[i]])), $"object {i}'s outline");
            Assert.That(mask.Pixels, Is.EqualTo(Polygon(CanvasH, CanvasW, ExpectedBoxes[i]).Pixels), $"object {i}'s pixels");
        }
    }

    /// <summary>bbox_clip_border: false keeps a moved box as it is while it overlaps the canvas; one off it still goes.</summary>
    [Test]
    public void WithoutClippingAPartialBoxKeepsItsMovedCoordinates()
    {
        var (destination, partners) = Tiles();
        foreach (var s in partners.Append(destination)) s.Masks = null;

        Mosaic(clip: false).Place(destination, partners, CenterX, CenterY);

        Assert.That(destination.AnnotationIds, Is.EqualTo(ExpectedIds));
        Assert.That(destination.Boxes.Take(4), Is.EqualTo(new float[] { -3, -1, 3, 5 }));
        Assert.That(destination.Boxes.Skip(8).Take(8), Is.EqualTo(new float[] { 16, -2, 20, 2, -5, 12, 15, 22 }));
    }

    /// <summary>
    /// center_ratio_range [1, 1] puts the centre at (20, 16), so the destination fills the top-left quadrant unmoved; prob 0
    /// leaves the sample as it was.
    /// </summary>
    [Test]
    public void TheCentreIsDrawnFromTheRangeAndProbSkips()
    {
        var (destination, partners) = Tiles();
        var image = (byte[])destination.Image.Clone();
        Mosaic(centerRange: [1, 1]).Mix(destination, partners, new Random(3));
        Assert.That((destination.Height, destination.Width), Is.EqualTo((CanvasH, CanvasW)));
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 20; x++)
                Assert.That(Pixel(destination.Image, CanvasW, y, x), Is.EqualTo(Pixel(image, 20, y, x)), $"pixel ({x}, {y})");
        Assert.That(destination.Boxes.Take(12), Is.EqualTo(Flat([Partial, Outside, Inside])), "unmoved");

        var (untouched, others) = Tiles();
        var before = (byte[])untouched.Image.Clone();
        Mosaic(prob: 0).Mix(untouched, others, new Random(3));
        Assert.That((untouched.Height, untouched.Width, untouched.Image, untouched.InstanceCount), Is.EqualTo((16, 20, before, 3)));
    }

    [Test]
    public void BadSettingsAreRefusedNamingTheKey()
    {
        void Refused(Action<MosaicConfig> change, string start)
        {
            var settings = new MosaicConfig();
            change(settings);
            var e = Assert.Throws<VimException>(() => new Mosaic(settings))!;
            Assert.That(e.Message, Does.StartWith(start));
        }
        Refused(s => s.ImgScale = [640], "data.mosaic.img_scale must be [width, height]");
        Refused(s => s.ImgScale = [640, 0], "data.mosaic.img_scale must be [width, height]");
        // The canvas is twice img_scale: 2·13000 = 26000, 26000²·3 bytes fit Array.MaxLength (2 147 483 591); 27000²·3 do not.
        Refused(s => s.ImgScale = [13500, 13500], "data.mosaic.img_scale [13500, 13500] makes a canvas of 27000x27000 pixels, more than one 8-bit RGB image can hold");
        Assert.DoesNotThrow(() => new Mosaic(new MosaicConfig { ImgScale = [13000, 13000] }), "a 26000² canvas fits");
        Refused(s => s.CenterRatioRange = [1.5, 0.5], "data.mosaic.center_ratio_range must be [min, max] with 0 ≤ min ≤ max ≤ 2");
        Refused(s => s.CenterRatioRange = [0.5, 2.5], "data.mosaic.center_ratio_range");
        Refused(s => s.PadVal = 256, "data.mosaic.pad_val must be a whole colour value in [0, 255]");
        Refused(s => s.Prob = 1.5, "data.mosaic.prob must be a probability in [0, 1]");
        Assert.DoesNotThrow(() => new Mosaic(new MosaicConfig()), "mmdet's defaults");
    }
}
