using System.Text.Json;
using NUnit.Framework;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Masks;

namespace Vim.Tests.Eval;

public class CocoJsonTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vim-coco-json-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void ResultsRoundTripThroughTheCocoResultsFormat()
    {
        var mask = Rle.Encode([0, 1, 1, 0, 1, 1], 2, 3);
        var dets = new List<CocoDetection>
        {
            new(900100002299, 18, 0.875, [1.5, 2.25, 30, 40.125], null),
            new(42, 1, 0.25, [0, 0, 3, 2], CocoSegmentation.FromRle(mask)),
        };
        string path = Path.Combine(_dir, "results.json");
        CocoResults.Save(path, dets);
        var back = CocoResults.Load(path);
        Assert.That(back, Has.Count.EqualTo(2));
        Assert.That(back[0].ImageId, Is.EqualTo(900100002299));
        Assert.That(back[0].CategoryId, Is.EqualTo(18));
        Assert.That(back[0].Score, Is.EqualTo(0.875));
        Assert.That(back[0].Bbox, Is.EqualTo(new[] { 1.5, 2.25, 30, 40.125 }));
        Assert.That(back[0].Segmentation, Is.Null);
        Assert.That(back[1].Segmentation!.Kind, Is.EqualTo(CocoSegmentationKind.CompressedRle));
        Assert.That(back[1].Segmentation!.ToRle(0, 0).Decode(), Is.EqualTo(mask.Decode()));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temp file left behind");
    }

    [Test]
    public void GroundTruthWithPolygonsUncompressedAndCompressedRleParses()
    {
        string json = """
        {"images": [{"id": 5, "width": 4, "height": 3, "file_name": "a.jpg"}],
         "categories": [{"id": 7, "name": "b"}, {"id": 3, "name": "a"}],
         "annotations": [
           {"id": 1, "image_id": 5, "category_id": 7, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 0,
            "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
           {"id": 2, "image_id": 5, "category_id": 3, "bbox": [0, 0, 4, 3], "area": 2, "iscrowd": 1,
            "segmentation": {"size": [3, 4], "counts": [1, 2, 9]}},
           {"id": 3, "image_id": 5, "category_id": 3, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0,
            "segmentation": {"size": [3, 4], "counts": "01;"}}
         ]}
        """;
        using var doc = JsonDocument.Parse(json);
        var ds = CocoDataset.Parse(doc.RootElement, "inline");
        Assert.That(ds.Annotations.Select(a => a.Segmentation!.Kind),
            Is.EqualTo(new[] { CocoSegmentationKind.Polygons, CocoSegmentationKind.UncompressedRle, CocoSegmentationKind.CompressedRle }));
        Assert.That(ds.Annotations[1].IsCrowd);
        // Square outline (0,0)-(2,0)-(2,2)-(0,2) covers pixel columns 0-1 and rows 0-1 -> area 4.
        Assert.That(ds.Annotations[0].Segmentation!.ToRle(3, 4).Area, Is.EqualTo(4));
        // Uncompressed [1, 2, 9]: rows 1-2 of column 0 -> area 2.
        Assert.That(ds.Annotations[1].Segmentation!.ToRle(3, 4).Area, Is.EqualTo(2));
        // "01;": counts [0, 1, 11] -> pixel (0,0) only.
        Assert.That(ds.Annotations[2].Segmentation!.ToRle(3, 4).Counts, Is.EqualTo(new uint[] { 0, 1, 11 }));

        var map = CategoryMap.FromDataset(ds);
        Assert.That(map.CategoryIds, Is.EqualTo(new long[] { 3, 7 }));
        Assert.That(map.Names, Is.EqualTo(new[] { "a", "b" }));
        Assert.That(map.ToCategoryId(1), Is.EqualTo(7));
        Assert.That(map.ToClassIndex(3), Is.EqualTo(0));
        Assert.Throws<VimException>(() => map.ToClassIndex(4));
    }

    [Test]
    public void MalformedFilesNameTheEntryAndField()
    {
        string path = Path.Combine(_dir, "bad.json");
        File.WriteAllText(path, """{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "bbox": [0, 0, 1, 1]}]}""");
        var e = Assert.Throws<VimException>(() => CocoDataset.Load(path));
        Assert.That(e!.Message, Does.Contain("annotations[0]").And.Contain("category_id").And.Contain(path));

        File.WriteAllText(path, """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]""");
        e = Assert.Throws<VimException>(() => CocoResults.Load(path));
        Assert.That(e!.Message, Does.Contain("[0]").And.Contain("bbox"));

        File.WriteAllText(path, """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]""");
        e = Assert.Throws<VimException>(() => CocoResults.Load(path));
        Assert.That(e!.Message, Does.Contain("score"));
    }

    // Json has no infinities, but a literal past the double range reads as one; a string must be UTF-8.
    [TestCase("""{"images": [{"id": 1, "width": 9, "height": 9}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1e999, 1]}]}""",
        "annotations[0]: field \"bbox\" must hold finite numbers, got 1e999.")]
    [TestCase("""{"images": [{"id": 1, "width": 9, "height": 9}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 4, 0, 4, -2e400]]}]}""",
        "annotations[0]: \"segmentation\" polygon coordinates must be finite numbers, got -2e400.")]
    [TestCase("""{"images": [{"id": 1, "width": 9, "height": 9, "file_name": "caf\u00e9.jpg"}], "categories": [{"id": 1, "name": "c\xffat"}]}""",
        "not valid JSON (the string at byte 112 is not valid UTF-8")]
    [TestCase("""{"images": [{"id": 7, "width": 100000, "height": 30000}]}""",
        "images[0]: width x height 100000 x 30000 is 3000000000 pixels, more than a mask can hold (2147483647).")]
    public void NonFiniteNumbersAndBrokenTextAreRefusedNamingTheField(string json, string message)
    {
        string path = Path.Combine(_dir, "odd.json");
        // \xff stands for a raw byte that is no UTF-8; everything else is written as UTF-8.
        var bytes = json.Split("\\xff").Select(System.Text.Encoding.UTF8.GetBytes).Aggregate((a, b) => [.. a, 0xff, .. b]);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<VimException>(() => CocoDataset.Load(path));
        Assert.That(e!.Message, Does.StartWith(path).And.Contain(message));
    }
}
