using System.Text;
using System.Text.Json;
using NUnit.Framework;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Demo;

namespace Vim.Tests.Data;

/// <summary>
/// The streaming COCO reader against an independent expectation built from <see cref="JsonDocument"/>
/// (the whole tree in memory, walked by the test itself), at read buffers small enough that every
/// kind of token straddles a refill.
/// </summary>
public class CocoStreamingJsonTests
{
    private static readonly int[] BufferSizes = [16, 17, 23, 64, 1 << 20];

    /// <summary>
    /// Keys in every order, sections before and after "images", unknown scalars, arrays and deeply nested
    /// objects (with braces and quotes inside strings), escaped names and values, integral ids written
    /// as 3.0 / 1e1, a compressed RLE string far longer than the buffer, and a byte-order mark.
    /// </summary>
    private static string TrickyJson()
    {
        var longCounts = new StringBuilder();
        for (int i = 0; i < 700; i++) longCounts.Append("0?");
        return $$$$$"""
        {
          "info": {"description": "a \"quoted\" {brace} [bracket] \\ text", "nested": {"deeper": [1, [2, [3, {"x": null}]], {"y": "}"}]}},
          "licenses": [{"id": 1, "name": "CC \u00e9\u4e2d", "url": "http:\/\/x"}, {"id": 2, "name": "", "url": ""}],
          "annotations": [
            {"segmentation": [[10.5, 10.25, 20, 10, 20, 20.125, 10, 20], [1, 1, 3, 1, 3, 3]], "area": 101.5, "iscrowd": 0,
             "image_id": 5, "bbox": [10.5, 10.25, 9.5, 9.875], "category_id": 18, "id": 1, "attributes": {"occluded": false, "list": [[], {}]}},
            {"id": 2.0, "category_id": 1e1, "iscrowd": true, "image\u005fid": 7,
             "segmentation": {"counts": [3, 2, 1, 6], "extra": {"ignored": [1, 2]}, "size": [3, 4]}, "bbox": [0, 0, 4, 3]},
            {"bbox": [], "iscrowd": 1, "segmentation": {"size": [40, 35], "counts": "{{{{{longCounts}}}}}"}, "id": 3,
             "image_id": 7, "category_id": 18, "area": null, "note": "tab\there \u0041"},
            {"image_id": 5, "id": 4, "category_id": 10, "segmentation": [], "bbox": null, "iscrowd": false}
          ],
          "images": [
            {"license": 1, "file_name": "dir\/na\u00efve \"one\".jpg", "height": 30, "width": 40.0, "id": 5, "coco_url": "http://a/b?c=d&e"},
            {"id": 7, "width": 4, "height": 3, "exif": {"camera": {"make": "x", "lens": [1, 2]}}, "file_name": 12}
          ],
          "type": "instances",
          "categories": [
            {"supercategory": "an\\imal", "id": 18, "name": "d\u00f6g"},
            {"name": "fr\"uit", "id": 10, "keypoints": ["a", "b"]}
          ],
          "trailing": [{"a": {"b": {"c": {"d": [[[["deep"]]]]}}}}],
        }
        """;
    }

    private static byte[] WithByteOrderMark(string json) => [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(json)];

    [Test]
    public void TrickyFileParsesLikeTheDocumentTreeAtEveryBufferSize()
    {
        string json = TrickyJson();
        var expected = Expectation.FromDocument(json);
        Assert.That(expected.Annotations, Has.Count.EqualTo(4), "the oracle itself sees every record");
        foreach (int bytes in BufferSizes)
        {
            using var stream = new MemoryStream(WithByteOrderMark(json));
            var actual = CocoDataset.Read(stream, "tricky.json", bytes);
            Expectation.AssertSame(expected, actual, $"buffer {bytes} B");
        }
    }

    [Test]
    public void SpotChecksOfTheTrickyFile()
    {
        // Independent of the oracle: values read off the literal above.
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(TrickyJson()));
        var ds = CocoDataset.Read(stream, "tricky.json", 16);
        Assert.That(ds.Images.Select(i => (i.Id, i.Width, i.Height, i.FileName)),
            Is.EqualTo(new[] { (5L, 40, 30, (string?)"dir/na\u00efve \"one\".jpg"), (7L, 4, 3, (string?)null) }));
        Assert.That(ds.Categories.Select(c => (c.Id, c.Name, c.Supercategory)),
            Is.EqualTo(new[] { (18L, "d\u00f6g", (string?)"an\\imal"), (10L, "fr\"uit", (string?)null) }));
        var a = ds.Annotations;
        Assert.That(a.Select(x => (x.Id, x.ImageId, x.CategoryId, x.IsCrowd)),
            Is.EqualTo(new[] { (1L, 5L, 18L, false), (2L, 7L, 10L, true), (3L, 7L, 18L, true), (4L, 5L, 10L, false) }));
        Assert.That(a[0].Segmentation!.Polygons![0], Is.EqualTo(new[] { 10.5, 10.25, 20, 10, 20, 20.125, 10, 20 }));
        Assert.That(a[0].Bbox, Is.EqualTo(new[] { 10.5, 10.25, 9.5, 9.875 }));
        Assert.That(a[0].Area, Is.EqualTo(101.5));
        Assert.That(a[1].Segmentation!.UncompressedCounts, Is.EqualTo(new uint[] { 3, 2, 1, 6 }));
        Assert.That((a[1].Segmentation!.RleHeight, a[1].Segmentation!.RleWidth), Is.EqualTo((3, 4)));
        Assert.That(a[2].Segmentation!.CompressedCounts, Has.Length.EqualTo(1400), "a token of 1400 bytes grew the 16-byte buffer");
        Assert.That((a[2].Bbox, a[2].Area), Is.EqualTo(((double[]?)null, (double?)null)), "empty bbox and null area are absent");
        Assert.That((a[3].Segmentation, a[3].Bbox), Is.EqualTo(((CocoSegmentation?)null, (double[]?)null)));
    }

    [Test]
    public void SyntheticValShapedFileParsesLikeTheDocumentTree()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vimdense-stream-{Guid.NewGuid():N}.json");
        try
        {
            var (images, annotations) = SyntheticCocoJson.Write(path, 150_000, seed: 3);
            var expected = Expectation.FromDocument(File.ReadAllText(path));
            Assert.That((expected.Images.Count, expected.Annotations.Count), Is.EqualTo((images, annotations)));
            Assert.That(expected.Annotations.Any(x => x.Kind == CocoSegmentationKind.UncompressedRle), "the file has crowd RLEs");
            foreach (int bytes in new[] { 16, 4096, 1 << 20 })
                Expectation.AssertSame(expected, CocoDataset.Load(path, bytes), $"buffer {bytes} B");
            Expectation.AssertSame(expected, CocoDataset.Load(path), "default buffer");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void TrainShapedBenchmarkFileParsesLikeTheDocumentTree()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vimdense-stream-{Guid.NewGuid():N}.json");
        try
        {
            long bytes = SyntheticCocoJson.WriteTrainShaped(path, images: 30, annotations: 400, seed: 5);
            Assert.That(bytes, Is.EqualTo(new FileInfo(path).Length));
            var expected = Expectation.FromDocument(File.ReadAllText(path));
            Assert.That((expected.Images.Count, expected.Annotations.Count), Is.EqualTo((30, 400)));
            var ds = CocoDataset.Load(path, 16);
            Expectation.AssertSame(expected, ds, "buffer 16 B");
            Assert.That(ds.Annotations.Select(a => a.ImageId).Distinct().Count(), Is.EqualTo(30), "annotations cover every image");
            var crowd = ds.Annotations.Where(a => a.IsCrowd).ToList();
            Assert.That(crowd, Is.Not.Empty, "about one in a hundred objects is a crowd region");
            Assert.That(crowd.All(a => a.Segmentation!.ToRle(0, 0).Area > 0), "crowd RLEs are valid (their runs sum to h*w, checked while reading)");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void ResultsFilesStreamWithTheSameFieldReaders()
    {
        string json = """
            [{"score": 0.5, "extra": {"a": [1, {"b": 2}]}, "bbox": [1, 2, 3, 4], "category_id": 3, "image_id": 9},
             {"image_id": 9, "segmentation": {"size": [2, 2], "counts": "04"}, "category_id": 3.0, "score": 1e-1}]
            """;
        foreach (int bytes in BufferSizes)
        {
            using var stream = new MemoryStream(Encoding.UTF8.GetBytes(json));
            var dets = CocoResults.Read(stream, "results.json", bytes);
            Assert.That(dets.Select(d => (d.ImageId, d.CategoryId, d.Score)), Is.EqualTo(new[] { (9L, 3L, 0.5), (9L, 3L, 0.1) }), $"buffer {bytes}");
            Assert.That(dets[0].Bbox, Is.EqualTo(new double[] { 1, 2, 3, 4 }));
            Assert.That(dets[1].Segmentation!.CompressedCounts, Is.EqualTo("04"));
        }
    }

    private static VimException ReadError(string json, int bytes = 16)
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(json));
        return Assert.Throws<VimException>(() => CocoDataset.Read(stream, "bad.json", bytes))!;
    }

    [Test]
    public void BadInputIsNamedAtAnyBufferSize()
    {
        const string Image = """{"id": 1, "width": 4, "height": 3, "file_name": "a.jpg"}""";
        foreach (int bytes in new[] { 16, 1 << 20 })
        {
            Assert.That(ReadError("""{"images": [""" + Image + """, {"id": 2,, }]}""", bytes).Message,
                Does.Contain("bad.json").And.Contain("not valid JSON"));
            Assert.That(ReadError("""{"images": [""" + Image + "]", bytes).Message, Does.Contain("not valid JSON"), "truncated");
            Assert.That(ReadError("""{"images": []} {"again": 1}""", bytes).Message, Does.Contain("not valid JSON"), "content after the root");
            Assert.That(ReadError("""[1, 2]""", bytes).Message, Does.Contain("expected a JSON object"));
            Assert.That(ReadError("""{"info": {"images": []}}""", bytes).Message, Does.Contain("\"images\""), "a nested images key is not the section");
            Assert.That(ReadError("""{"images": [""" + Image + """, 7]}""", bytes).Message, Does.Contain("images[1]").And.Contain("expected an object"));
            Assert.That(ReadError("""{"images": [{"id": "x"}]}""", bytes).Message, Does.Contain("images[0]").And.Contain("integer id").And.Contain("\"x\""));
            Assert.That(ReadError("""{"images": [{"id": 1.5}]}""", bytes).Message, Does.Contain("got 1.5"));
            Assert.That(ReadError("""{"images": [""" + Image + """], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]}""", bytes).Message,
                Does.Contain("annotations[0]").And.Contain("4 numbers").And.Contain("got 3"));
            Assert.That(ReadError("""{"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [2, 2], "counts": [1, 2]}}]}""", bytes).Message,
                Does.Contain("annotations[0]").And.Contain("sum to 3").And.Contain("4"));
            Assert.That(ReadError("""{"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3]]}]}""", bytes).Message,
                Does.Contain("even number").And.Contain("got 3"));
            Assert.That(ReadError("""{"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"counts": "ab"}}]}""", bytes).Message,
                Does.Contain("RLE object"));
            Assert.That(ReadError("""{"images": [], "annotations": {}}""", bytes).Message, Does.Contain("\"annotations\" must be an array"));
        }
    }

    /// <summary>The records a COCO reader must produce, computed by walking a <see cref="JsonDocument"/>.</summary>
    private sealed record Expectation(
        List<(long Id, int Width, int Height, string? FileName)> Images,
        List<(long Id, string Name, string? Super)> Categories,
        List<(long Id, long ImageId, long CategoryId, double[]? Bbox, double? Area, bool Crowd, CocoSegmentationKind? Kind,
            double[][]? Polygons, string? Compressed, uint[]? Runs, int RleH, int RleW)> Annotations)
    {
        public static Expectation FromDocument(string json)
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
            var root = doc.RootElement;
            static long Id(JsonElement e) => (long)e.GetDouble();
            var images = root.GetProperty("images").EnumerateArray().Select(e => (
                Id(e.GetProperty("id")),
                e.TryGetProperty("width", out var w) ? (int)w.GetDouble() : 0,
                e.TryGetProperty("height", out var h) ? (int)h.GetDouble() : 0,
                e.TryGetProperty("file_name", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null)).ToList();
            var categories = root.GetProperty("categories").EnumerateArray().Select(e => (
                Id(e.GetProperty("id")),
                e.GetProperty("name").GetString()!,
                e.TryGetProperty("supercategory", out var s) ? s.GetString() : null)).ToList();
            var annotations = root.GetProperty("annotations").EnumerateArray().Select(e =>
            {
                double[]? box = e.TryGetProperty("bbox", out var b) && b.ValueKind == JsonValueKind.Array && b.GetArrayLength() > 0
                    ? b.EnumerateArray().Select(v => v.GetDouble()).ToArray() : null;
                double? area = e.TryGetProperty("area", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetDouble() : null;
                bool crowd = e.TryGetProperty("iscrowd", out var c) && (c.ValueKind == JsonValueKind.True || (c.ValueKind == JsonValueKind.Number && c.GetDouble() != 0));
                CocoSegmentationKind? kind = null;
                double[][]? polygons = null;
                string? compressed = null;
                uint[]? runs = null;
                int rh = 0, rw = 0;
                if (e.TryGetProperty("segmentation", out var s) && s.ValueKind == JsonValueKind.Array && s.GetArrayLength() > 0)
                {
                    kind = CocoSegmentationKind.Polygons;
                    polygons = s.EnumerateArray().Select(p => p.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
                }
                else if (s.ValueKind == JsonValueKind.Object)
                {
                    rh = s.GetProperty("size")[0].GetInt32();
                    rw = s.GetProperty("size")[1].GetInt32();
                    var counts = s.GetProperty("counts");
                    if (counts.ValueKind == JsonValueKind.String) { kind = CocoSegmentationKind.CompressedRle; compressed = counts.GetString(); }
                    else { kind = CocoSegmentationKind.UncompressedRle; runs = counts.EnumerateArray().Select(v => v.GetUInt32()).ToArray(); }
                }
                return (Id(e.GetProperty("id")), Id(e.GetProperty("image_id")), Id(e.GetProperty("category_id")), box, area, crowd, kind,
                    polygons, compressed, runs, rh, rw);
            }).ToList();
            return new Expectation(images, categories, annotations);
        }

        public static void AssertSame(Expectation expected, CocoDataset actual, string context)
        {
            Assert.That(actual.Images.Select(i => (i.Id, i.Width, i.Height, i.FileName)), Is.EqualTo(expected.Images), context);
            Assert.That(actual.Categories.Select(c => (c.Id, c.Name, c.Supercategory)), Is.EqualTo(expected.Categories), context);
            Assert.That(actual.Annotations, Has.Count.EqualTo(expected.Annotations.Count), context);
            for (int i = 0; i < expected.Annotations.Count; i++)
            {
                var e = expected.Annotations[i];
                var a = actual.Annotations[i];
                string where = $"{context}, annotation {i}";
                Assert.That((a.Id, a.ImageId, a.CategoryId, a.Area, a.IsCrowd), Is.EqualTo((e.Id, e.ImageId, e.CategoryId, e.Area, e.Crowd)), where);
                Assert.That(a.Bbox, Is.EqualTo(e.Bbox), where);
                Assert.That(a.Segmentation?.Kind, Is.EqualTo(e.Kind), where);
                if (a.Segmentation is null) continue;
                Assert.That(a.Segmentation.Polygons, Is.EqualTo(e.Polygons), where);
                Assert.That(a.Segmentation.CompressedCounts, Is.EqualTo(e.Compressed), where);
                Assert.That(a.Segmentation.UncompressedCounts, Is.EqualTo(e.Runs), where);
                if (e.Kind != CocoSegmentationKind.Polygons)
                    Assert.That((a.Segmentation.RleHeight, a.Segmentation.RleWidth), Is.EqualTo((e.RleH, e.RleW)), where);
            }
        }
    }

    [Test]
    public void BrokenUtf8IsReportedAtItsByteInTheFileAtEveryBufferSize()
    {
        // The category name's opening quote is at byte 3 (mark) + the prefix's length, however often the buffer refills.
        var prefix = Encoding.UTF8.GetBytes("""{"images": [{"id": 1, "file_name": "pad pad pad pad pad pad pad pad pad"}], "categories": [{"id": 1, "name": """);
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. prefix, (byte)'"', (byte)'c', 0xFF, (byte)'"', .. "}]}"u8];
        foreach (var size in BufferSizes)
        {
            var e = Assert.Throws<VimException>(() => CocoJsonReading.ReadDataset(new MemoryStream(bytes), "utf8.json", size))!;
            Assert.That(e.Message, Does.StartWith($"utf8.json: not valid JSON (the string at byte {3 + prefix.Length} is not valid UTF-8"), $"buffer {size}");
        }
    }
}
