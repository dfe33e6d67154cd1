using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Masks;

namespace Vim.Tests.Eval;

public class RleTests
{
    private static byte[] Square(int height, int width, int x0, int y0, int w, int h)
    {
        var m = new byte[height * width];
        for (int y = y0; y < y0 + h; y++) for (int x = x0; x < x0 + w; x++) m[y * width + x] = 1;
        return m;
    }

    [Test]
    public void EncodeDecodeRoundTripsRandomMasks()
    {
        var rng = new Random(5);
        foreach (var (h, w) in new[] { (1, 1), (1, 17), (13, 1), (7, 9), (32, 20), (50, 64) })
        {
            foreach (double density in new[] { 0.0, 0.1, 0.5, 0.9, 1.0 })
            {
                var mask = new byte[h * w];
                for (int i = 0; i < mask.Length; i++) mask[i] = (byte)(rng.NextDouble() < density ? 1 : 0);
                var rle = Rle.Encode(mask, h, w);
                Assert.That(rle.Decode(), Is.EqualTo(mask), $"{h}x{w} density {density}");
                Assert.That(rle.Area, Is.EqualTo(mask.Count(v => v != 0)));
                var again = Rle.FromCompressedString(rle.ToCompressedString(), h, w);
                Assert.That(again.Counts, Is.EqualTo(rle.Counts), "compressed string round trip");
            }
        }
    }

    [Test]
    public void CompressedStringOfTopLeftSquareIsTheKnownCocoString()
    {
        // 10x10 mask, rows 0-4 x cols 0-4 set. Column-major runs: 0 zeros, then (5 ones, 5 zeros) for
        // columns 0..4, the last zero run merging with columns 5..9: [0,5,5,5,5,5,5,5,5,5,55].
        // String: '0' (0), '5','5' (raw 5, 5), then seven deltas of 0 to the count two back -> '0'x7,
        // then 55 - 5 = 50 = 0b1_10010 -> low group 18|0x20 = 50 -> 'b', high group 1 -> '1'.
        // This is the mask string used in mmdetection's test (coco_segm_mmdet_dummy).
        var rle = Rle.Encode(Square(10, 10, 0, 0, 5, 5), 10, 10);
        Assert.That(rle.Counts, Is.EqualTo(new uint[] { 0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 55 }));
        Assert.That(rle.ToCompressedString(), Is.EqualTo("0550000000b1"));
        Assert.That(RleStringCodec.Decode("0550000000b1"), Is.EqualTo(rle.Counts));
        Assert.That(rle.Area, Is.EqualTo(25));
        Assert.That(rle.ToBbox(), Is.EqualTo(new double[] { 0, 0, 5, 5 }));
    }

    [Test]
    public void EncodingMatchesPycocotoolsStringsOfTheTorchmetricsMasks()
    {
        // pycocotools mask.encode output for the 5x5 torchmetrics docstring masks, as stored in the case file.
        using var doc = MetricCaseFiles.Open("coco_segm_torchmetrics_doc_float32_thresholds.json");
        var root = doc.RootElement;
        var plain = root.GetProperty("masks_plain");
        string target = root.GetProperty("gt").GetProperty("annotations")[0].GetProperty("segmentation").GetProperty("counts").GetString()!;
        string pred = root.GetProperty("dt")[0].GetProperty("segmentation").GetProperty("counts").GetString()!;
        Assert.That(Rle.Encode(ToMask(plain.GetProperty("target")), 5, 5).ToCompressedString(), Is.EqualTo(target));
        Assert.That(Rle.Encode(ToMask(plain.GetProperty("pred")), 5, 5).ToCompressedString(), Is.EqualTo(pred));
        // IoU 3/5 = 0.6 exactly: target has 4 pixels, pred 4 pixels, 3 shared.
        Assert.That(MaskIou.Iou(Rle.FromCompressedString(pred, 5, 5), Rle.FromCompressedString(target, 5, 5), false), Is.EqualTo(0.6));
    }

    private static byte[] ToMask(JsonElement rows)
    {
        var list = new List<byte>();
        foreach (var row in rows.EnumerateArray()) foreach (var v in row.EnumerateArray()) list.Add((byte)v.GetInt32());
        return list.ToArray();
    }

    [Test]
    public void PolygonRasterisationMatchesPycocotoolsOnTheShapesCase()
    {
        // The case's detections are pycocotools merge(frPyObjects(polygons, 256, 256)) of the original polygons.
        using var doc = MetricCaseFiles.Open("coco_segm_shapes_polygon_to_rle.json");
        var root = doc.RootElement;
        var rles = root.GetProperty("dt").EnumerateArray().ToList();
        var polys = root.GetProperty("dt_polygons_original").EnumerateArray().ToList();
        Assert.That(polys, Has.Count.EqualTo(rles.Count));
        for (int i = 0; i < rles.Count; i++)
        {
            Assert.That(polys[i].GetProperty("id").GetInt64(), Is.EqualTo(rles[i].GetProperty("id").GetInt64()));
            var polygons = polys[i].GetProperty("segmentation").EnumerateArray()
                .Select(p => p.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToList();
            var rle = PolygonRasterizer.FromPolygons(polygons, 256, 256);
            Assert.That(rle.ToCompressedString(), Is.EqualTo(rles[i].GetProperty("segmentation").GetProperty("counts").GetString()), $"detection id {polys[i].GetProperty("id")}");
        }
    }

    [Test]
    public void AxisAlignedSquarePolygonCoversTheExpectedPixels()
    {
        // Scaled by 5 the outline is (10,5)-(30,5)-(30,20)-(10,20). Pixel column c has its centre at
        // up-sampled x = 5c+2, so the horizontal edges cross columns 2..5. In each such column the top
        // edge (y=5) starts the inside run at row ceil((5+.5)/5-.5) = ceil(0.6) = 1 and the bottom edge
        // (y=20) ends it before row ceil(3.6) = 4: a 4x3 block (area 12), bbox [2, 1, 4, 3].
        var rle = PolygonRasterizer.FromPolygon([2, 1, 6, 1, 6, 4, 2, 4], 8, 8);
        Assert.That(rle.Decode(), Is.EqualTo(Square(8, 8, 2, 1, 4, 3)));
        Assert.That(rle.ToBbox(), Is.EqualTo(new double[] { 2, 1, 4, 3 }));
    }

    [Test]
    public void MergeIntersectionAndIouFollowInclusionExclusion()
    {
        // A: 5x5 square at (0,0) (25 px). B: rows 0-2 over all 10 columns (30 px). A∩B = 5 cols x 3 rows = 15.
        var a = Rle.Encode(Square(10, 10, 0, 0, 5, 5), 10, 10);
        var b = Rle.Encode(Square(10, 10, 0, 0, 10, 3), 10, 10);
        Assert.That(Rle.Merge([a, b]).Area, Is.EqualTo(25 + 30 - 15));
        Assert.That(Rle.Merge([a, b], intersect: true).Area, Is.EqualTo(15));
        Assert.That(Rle.Merge([a, b], intersect: true).Decode(), Is.EqualTo(Square(10, 10, 0, 0, 5, 3)));
        Assert.That(MaskIou.Iou(a, b, gtIsCrowd: false), Is.EqualTo(15.0 / 40));
        // Crowd ground truth: intersection over the detection's area.
        Assert.That(MaskIou.Iou(a, b, gtIsCrowd: true), Is.EqualTo(15.0 / 25));
        Assert.That(MaskIou.Iou(b, a, gtIsCrowd: true), Is.EqualTo(15.0 / 30));
        // Disjoint masks and masks of different sizes.
        var c = Rle.Encode(Square(10, 10, 6, 6, 3, 3), 10, 10);
        Assert.That(MaskIou.Iou(a, c, false), Is.EqualTo(0));
        var d = Rle.Encode(Square(12, 10, 0, 0, 5, 5), 12, 10);
        Assert.That(MaskIou.Iou(a, d, false), Is.EqualTo(-1));
    }

    [Test]
    public void MaskIouAgreesWithPixelCountingOnRandomMasks()
    {
        var rng = new Random(11);
        for (int trial = 0; trial < 50; trial++)
        {
            int h = 1 + rng.Next(20), w = 1 + rng.Next(20);
            var m1 = new byte[h * w];
            var m2 = new byte[h * w];
            for (int i = 0; i < m1.Length; i++) { m1[i] = (byte)(rng.Next(3) == 0 ? 1 : 0); m2[i] = (byte)(rng.Next(2)); }
            int inter = 0, union = 0, a1 = 0;
            for (int i = 0; i < m1.Length; i++) { inter += m1[i] & m2[i]; union += m1[i] | m2[i]; a1 += m1[i]; }
            bool crowd = trial % 2 == 1;
            double expected = inter == 0 ? 0 : (double)inter / (crowd ? a1 : union);
            Assert.That(MaskIou.Iou(Rle.Encode(m1, h, w), Rle.Encode(m2, h, w), crowd), Is.EqualTo(expected), $"trial {trial}");
            var union2 = Rle.Merge([Rle.Encode(m1, h, w), Rle.Encode(m2, h, w)]);
            Assert.That(union2.Area, Is.EqualTo(union));
        }
    }

    [Test]
    public void BboxOfAMaskWrappingAcrossColumnsSpansTheFullHeight()
    {
        // 4x3 mask: pixel (row 3, col 0) and (row 0, col 1) set -> one run crossing the column border.
        // Tight box: cols 0..1, rows 0..3 -> [0, 0, 2, 4].
        var m = new byte[12];
        m[3 * 3 + 0] = 1;
        m[0 * 3 + 1] = 1;
        var rle = Rle.Encode(m, 4, 3);
        Assert.That(rle.Counts, Is.EqualTo(new uint[] { 3, 2, 7 }));
        Assert.That(rle.ToBbox(), Is.EqualTo(new double[] { 0, 0, 2, 4 }));
    }

    [Test]
    public void MalformedCompressedStringIsRejected()
    {
        Assert.Throws<FormatException>(() => RleStringCodec.Decode("0\u00ff"));
        Assert.Throws<ArgumentException>(() => Rle.FromCompressedString("0550000000b1", 10, 11));
    }
}
