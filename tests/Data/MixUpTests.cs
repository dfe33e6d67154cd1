using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;
using Vim.Data.Masks;
using Vim.Data.Transforms;
using static Vim.Tests.Data.CopyPasteTests;

namespace Vim.Tests.Data;

/// <summary>mmdet's MixUp on hand-made samples: the blend at a pixel, the flipped and cut partner, and the box rules at their edges.</summary>
public class MixUpTests
{
    private static MixUp MixUp(int[] imgScale, bool clip = true, bool skipFilter = true, double minBboxSize = 5, double minAreaRatio = 0.2, double maxAspectRatio = 20) =>
        new(new MixUpConfig
        {
            ImgScale = [.. imgScale], BboxClipBorder = clip, SkipFilter = skipFilter,
            MinBboxSize = minBboxSize, MinAreaRatio = minAreaRatio, MaxAspectRatio = maxAspectRatio,
        });

    private static void SetPixel(DataSample s, int y, int x, params byte[] rgb) => rgb.CopyTo(s.Image, 3 * (y * s.Width + x));

    /// <summary>
    /// A 5×6 partner fits its img_scale [6, 5] as it is; unjittered and unflipped it lies at the top left of the 10×12
    /// sample, pad_val 114 beyond it. The mix is the floor of the mean: (201, 10, 0) with (100, 255, 3) gives
    /// (150, 132, 1); (7, 8, 9) with the padding gives (60, 61, 61). The sample's object comes first, the partner's after.
    /// </summary>
    [Test]
    public void TheImagesAreAveragedAndThePartnersObjectsJoin()
    {
        var destination = Scene(10, 12, 1, new Rect(6, 5, 11, 9));
        var partner = Scene(5, 6, 2, new Rect(1, 1, 4, 3));
        SetPixel(destination, 1, 2, 201, 10, 0);
        SetPixel(partner, 1, 2, 100, 255, 3);
        SetPixel(destination, 7, 9, 7, 8, 9);

        MixUp([6, 5]).Combine(destination, partner, jitter: 1, flip: false, _ => throw new AssertionException("nothing to cut"));

        Assert.That((destination.Height, destination.Width), Is.EqualTo((10, 12)));
        Assert.That(Pixel(destination.Image, 12, 1, 2), Is.EqualTo(new byte[] { 150, 132, 1 }));
        Assert.That(Pixel(destination.Image, 12, 7, 9), Is.EqualTo(new byte[] { 60, 61, 61 }));
        Assert.That(destination.Boxes, Is.EqualTo(new float[] { 6, 5, 11, 9, 1, 1, 4, 3 }));
        Assert.That(destination.AnnotationIds, Is.EqualTo(new long[] { 100, 200 }));
        Assert.That(destination.Masks!.Select(m => m.Pixels), Is.EqualTo(new[] { Mask(10, 12, new Rect(6, 5, 11, 9)).Pixels, Mask(10, 12, new Rect(1, 1, 4, 3)).Pixels }));
    }

    /// <summary>
    /// A 6×8 partner (object x [1, 4) × y [2, 5), coloured 200 on a black ground) mirrored in its width 8 puts the object at
    /// x [4, 7); cut to a black 4×5 sample at the largest offsets (1, 2) it lands at x [2, 5) × y [1, 4). The blend is 100
    /// exactly there and 0 elsewhere, and the moved mask, RLE or polygon, covers exactly those pixels.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void AFlippedAndCutPartnersMaskMovesWithItsPixels(bool polygons)
    {
        var destination = new DataSample(1, "black", new byte[4 * 5 * 3], 4, 5) { Masks = [] };
        var object_ = new Rect(1, 2, 4, 5);
        var image = new byte[6 * 8 * 3];
        for (int y = object_.Y0; y < object_.Y1; y++)
            for (int x = object_.X0; x < object_.X1; x++) image.AsSpan(3 * (y * 8 + x), 3).Fill(200);
        IReadOnlyList<double[]> outline = [[1, 2, 4, 2, 4, 5, 1, 5]];
        var partner = new DataSample(2, "partner", image, 6, 8)
        {
            Boxes = [1, 2, 4, 5], Labels = [3], IsCrowd = [false], AnnotationIds = [7],
            Masks = [polygons ? new InstanceMask(6, 8, () => PolygonRasterizer.FromPolygons(outline, 6, 8).Decode(), outline) : Mask(6, 8, object_)],
        };

        MixUp([8, 6]).Combine(destination, partner, jitter: 1, flip: true, n => n - 1);

        var expected = new Rect(2, 1, 5, 4);
        Assert.That(destination.Boxes, Is.EqualTo(new float[] { 2, 1, 5, 4 }));
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++)
                Assert.That(Pixel(destination.Image, 5, y, x), Is.EqualTo(Enumerable.Repeat((byte)(expected.Contains(x, y) ? 100 : 0), 3)), $"pixel ({x}, {y})");
        var mask = destination.Masks!.Single();
        if (polygons)
        {
            Assert.That(Outlines.Extent(mask.Outlines!), Is.EqualTo(new float[] { 2, 1, 5, 4 }));
            IReadOnlyList<double[]> placed = [[2, 1, 5, 1, 5, 4, 2, 4]];
            Assert.That(mask.Pixels, Is.EqualTo(PolygonRasterizer.FromPolygons(placed, 4, 5).Decode()));
        }
        else Assert.That(mask.Pixels, Is.EqualTo(Mask(4, 5, expected).Pixels));
    }

    /// <summary>
    /// A 20×20 partner (img_scale [20, 20]) cut to a 10×10 sample at offset (4, 4). Its boxes before the cut and after it:
    /// b0 [0, 0, 20, 20] → [0, 0, 10, 10] (a quarter of its area left), b1 [4, 4, 10, 10] → [0, 0, 6, 6], b2 [4, 4, 14, 6]
    /// → [0, 0, 10, 2] (sides 5 : 1), b3 [16, 16, 20, 20] → [12, 12, 16, 16], clipped to [10, 10, 10, 10], off the sample
    /// and always dropped. skip_filter: false applies _filter_box_candidates: strictly wider and taller than min_bbox_size,
    /// strictly more than min_area_ratio of the area left, a side ratio strictly below max_aspect_ratio.
    /// </summary>
    [TestCase(true, 5, 0.2, 20, new long[] { 200, 201, 202 })]
    [TestCase(false, 1.99, 0.2, 20, new long[] { 200, 201, 202 })]
    [TestCase(false, 2, 0.2, 20, new long[] { 200, 201 })]        // b2's height 2 is not above 2
    [TestCase(false, 6, 0.2, 20, new long[] { 200 })]             // b1's 6 is not above 6
    [TestCase(false, 0, 0.25, 20, new long[] { 201, 202 })]       // b0 keeps 0.25, not above 0.25
    [TestCase(false, 0, 0.249, 20, new long[] { 200, 201, 202 })]
    [TestCase(false, 0, 0.2, 5, new long[] { 200, 201 })]         // b2's 5 is not below 5
    [TestCase(false, 0, 0.2, 5.01, new long[] { 200, 201, 202 })]
    public void PartnerBoxesAreClippedAndFilteredAtTheirEdges(bool skipFilter, double minBboxSize, double minAreaRatio, double maxAspectRatio, long[] kept)
    {
        var destination = Scene(10, 10, 1);
        var partner = Scene(20, 20, 2, new Rect(0, 0, 20, 20), new Rect(4, 4, 10, 10), new Rect(4, 4, 14, 6), new Rect(16, 16, 20, 20));
        partner.Masks = null;
        destination.Masks = null;

        MixUp([20, 20], skipFilter: skipFilter, minBboxSize: minBboxSize, minAreaRatio: minAreaRatio, maxAspectRatio: maxAspectRatio)
            .Combine(destination, partner, jitter: 1, flip: false, _ => 4);

        Assert.That(destination.AnnotationIds, Is.EqualTo(kept));
        var cut = new Dictionary<long, float[]> { [200] = [0, 0, 10, 10], [201] = [0, 0, 6, 6], [202] = [0, 0, 10, 2] };
        Assert.That(destination.Boxes, Is.EqualTo(kept.SelectMany(id => cut[id]).ToArray()));
    }

    /// <summary>Without clipping a cut box keeps its moved coordinates: b0 [0, 0, 20, 20] at offset (4, 4) is [−4, −4, 16, 16].</summary>
    [Test]
    public void WithoutClippingACutBoxKeepsItsMovedCoordinates()
    {
        var destination = Scene(10, 10, 1);
        var partner = Scene(20, 20, 2, new Rect(0, 0, 20, 20), new Rect(16, 16, 20, 20));
        partner.Masks = null;
        destination.Masks = null;
        MixUp([20, 20], clip: false).Combine(destination, partner, jitter: 1, flip: false, _ => 4);
        Assert.That(destination.AnnotationIds, Is.EqualTo(new long[] { 200 }), "[12, 12, 16, 16] starts past the sample's edge");
        Assert.That(destination.Boxes, Is.EqualTo(new float[] { -4, -4, 16, 16 }));
    }

    /// <summary>
    /// The fit and the jitter multiply: a 4×2 partner (object [0, 1, 2, 3]) fitted into [8, 8] doubles to 8×4 (box
    /// [0, 2, 4, 6]) on an 8×8 canvas, which jitter 0.75 brings to 6×6: box [0, 1.5, 3, 4.5] in a 6×6 sample. A partner
    /// without objects mixes nothing, which is why the loader redraws one (max_iters).
    /// </summary>
    [Test]
    public void TheJitterScalesTheFittedCanvasAndAPartnerWithoutObjectsMixesNothing()
    {
        var destination = Scene(6, 6, 1);
        var partner = Scene(4, 2, 2, new Rect(0, 1, 2, 3));
        MixUp([8, 8]).Combine(destination, partner, jitter: 0.75, flip: false, _ => throw new AssertionException("nothing to cut"));
        Assert.That(destination.Boxes, Is.EqualTo(new float[] { 0, 1.5f, 3, 4.5f }));

        var mixer = MixUp([8, 8]);
        var empty = Scene(4, 4, 2);
        Assert.That(((ISampleMixer)mixer).Accepts(empty), Is.False);
        Assert.That(((ISampleMixer)mixer).MaxPartnerDraws, Is.EqualTo(15), "mmdet's max_iters");
        var alone = Scene(4, 4, 1, new Rect(0, 0, 1, 1));
        var before = (byte[])alone.Image.Clone();
        mixer.Mix(alone, [empty], new Random(0));
        Assert.That((alone.Image, alone.AnnotationIds), Is.EqualTo((before, new long[] { 100 })));
    }

    [Test]
    public void BadSettingsAreRefusedNamingTheKey()
    {
        void Refused(Action<MixUpConfig> change, string start)
        {
            var settings = new MixUpConfig();
            change(settings);
            var e = Assert.Throws<VimException>(() => new MixUp(settings))!;
            Assert.That(e.Message, Does.StartWith(start));
        }
        Refused(s => s.ImgScale = [0, 640], "data.mixup.img_scale must be [width, height]");
        Refused(s => s.RatioRange = [0, 1], "data.mixup.ratio_range must be [min, max] scale factors with 0 < min ≤ max");
        Refused(s => s.RatioRange = [1.5, 0.5], "data.mixup.ratio_range must be");
        Refused(s => { s.ImgScale = [4, 4]; s.RatioRange = [0.2, 1]; }, "data.mixup.ratio_range's minimum 0.2 shrinks the img_scale canvas [4, 4] to nothing");
        // 1000·26 = 26000, 26000²·3 = 2 028 000 000 bytes fit Array.MaxLength (2 147 483 591); 27000²·3 = 2 187 000 000 do not.
        Refused(s => s.RatioRange = [0.5, 1e10], "data.mixup.ratio_range's maximum 10000000000 with img_scale [640, 640] makes a partner canvas larger");
        Refused(s => s.RatioRange = [0.5, double.PositiveInfinity], "data.mixup.ratio_range's maximum Infinity");
        Refused(s => { s.ImgScale = [1000, 1000]; s.RatioRange = [0.5, 27]; }, "data.mixup.ratio_range's maximum 27 with img_scale [1000, 1000]");
        Assert.DoesNotThrow(() => new MixUp(new MixUpConfig { ImgScale = [1000, 1000], RatioRange = [0.5, 26] }), "26000² RGB pixels fit");
        Refused(s => { s.ImgScale = [30000, 30000]; s.RatioRange = [0.5, 0.9]; }, "data.mixup.ratio_range's maximum 0.9 with img_scale [30000, 30000]");
        Refused(s => s.FlipRatio = -0.1, "data.mixup.flip_ratio must be in [0, 1]");
        Refused(s => s.PadVal = 114.5, "data.mixup.pad_val must be a whole colour value in [0, 255]");
        Refused(s => s.MaxIters = 0, "data.mixup.max_iters must be at least 1");
        Refused(s => s.MinBboxSize = -1, "data.mixup.min_bbox_size must be 0 or more");
        Refused(s => s.MinAreaRatio = -1, "data.mixup.min_area_ratio must be 0 or more");
        Refused(s => s.MaxAspectRatio = 0, "data.mixup.max_aspect_ratio must be positive");
        Assert.DoesNotThrow(() => new MixUp(new MixUpConfig()), "mmdet's defaults");
    }
}
