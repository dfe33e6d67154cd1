using NUnit.Framework;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Masks;

namespace Vim.Tests.Data;

public class CocoInstanceDatasetTests
{
    private const string Categories = """[{"id": 3, "name": "cat"}, {"id": 17, "name": "dog"}, {"id": 9, "name": "bird"}]""";

    /// <summary>Two 30×40 images (h×w) plus one image without annotations and one with only a crowd region.</summary>
    private static string Json(string annotations, string? categories = null) => $$"""
        {
          "images": [
            {"id": 10, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 11, "file_name": "b.png", "width": 40, "height": 30},
            {"id": 12, "file_name": "empty.png", "width": 40, "height": 30},
            {"id": 13, "file_name": "crowd.png", "width": 40, "height": 30}
          ],
          "annotations": [{{annotations}}],
          "categories": {{categories ?? Categories}}
        }
        """;

    private const string GoodAnnotations = """
        {"id": 1, "image_id": 10, "category_id": 17, "bbox": [5, 4, 10, 6], "area": 60, "iscrowd": 0,
         "segmentation": [[5, 4, 15, 4, 15, 10, 5, 10]]},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 1, 2], "area": 2, "iscrowd": 0,
         "segmentation": {"size": [30, 40], "counts": [1, 2, 1197]}},
        {"id": 3, "image_id": 11, "category_id": 9, "bbox": [20, 10, 5, 5], "area": 25, "iscrowd": 0,
         "segmentation": {"size": [30, 40], "counts": "COMPRESSED"}},
        {"id": 4, "image_id": 13, "category_id": 9, "bbox": [1, 1, 3, 3], "area": 9, "iscrowd": 1,
         "segmentation": {"size": [30, 40], "counts": [31, 3, 27, 3, 27, 3, 1106]}}
        """;

    private static byte[] SquareMask(int h, int w, int x0, int y0, int size)
    {
        var m = new byte[h * w];
        for (int y = y0; y < y0 + size; y++) for (int x = x0; x < x0 + size; x++) m[y * w + x] = 1;
        return m;
    }

    private static DataTestFiles Fixture(string annotations, string? categories = null)
    {
        var files = new DataTestFiles();
        var compressed = Rle.Encode(SquareMask(30, 40, 20, 10, 5), 30, 40).ToCompressedString();
        files.WriteText("ann.json", Json(annotations.Replace("COMPRESSED", compressed), categories));
        foreach (var name in new[] { "a.png", "b.png", "empty.png", "crowd.png" })
            files.WriteRgb(Path.Combine("img", name), 30, 40, (y, x) => ((byte)x, (byte)y, 7));
        return files;
    }

    [Test]
    public void LoadsBoxesContiguousLabelsCrowdFlagsAndMasks()
    {
        using var files = Fixture(GoodAnnotations);
        var ds = CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img"));
        Assert.That(ds.Count, Is.EqualTo(2), "training skips the image without annotations and the crowd-only image");
        Assert.That(ds.Categories.CategoryIds, Is.EqualTo(new long[] { 3, 9, 17 }));
        Assert.That(ds.Warnings.Total, Is.Zero);

        var a = ds.Load(0);
        Assert.That((a.ImageId, a.Height, a.Width), Is.EqualTo((10L, 30, 40)));
        Assert.That((a.Image[3 * (7 * 40 + 12)], a.Image[3 * (7 * 40 + 12) + 1], a.Image[3 * (7 * 40 + 12) + 2]), Is.EqualTo(((byte)12, (byte)7, (byte)7)), "RGB order");
        Assert.That(a.Boxes, Is.EqualTo(new float[] { 5, 4, 15, 10, 0, 0, 1, 2 }), "xywh → xyxy");
        Assert.That(a.Labels, Is.EqualTo(new[] { 2, 0 }), "dog (17) → 2, cat (3) → 0");
        Assert.That(a.AnnotationIds, Is.EqualTo(new long[] { 1, 2 }));
        Assert.That(a.Masks!.All(m => !m.IsDecoded), Is.True, "masks are decoded lazily");
        var polygonMask = a.Masks![0].Pixels;
        var bounds = RectangleScene.Bounds(polygonMask, 30, 40, p => polygonMask[p] != 0)!.Value;
        Assert.That(bounds.X0, Is.InRange(4, 6)); Assert.That(bounds.X1, Is.InRange(14, 16));
        Assert.That(bounds.Y0, Is.InRange(3, 5)); Assert.That(bounds.Y1, Is.InRange(9, 11));
        // Uncompressed counts [1, 2, …] in column-major order: pixels (x=0, y=1) and (x=0, y=2).
        var rleMask = a.Masks[1].Pixels;
        Assert.That(rleMask.Count(p => p != 0), Is.EqualTo(2));
        Assert.That((rleMask[1 * 40], rleMask[2 * 40]), Is.EqualTo(((byte)1, (byte)1)));

        var b = ds.Load(1);
        Assert.That(b.Masks![0].Pixels, Is.EqualTo(SquareMask(30, 40, 20, 10, 5)), "compressed RLE decodes to the square it encodes");
    }

    [Test]
    public void EvaluationKeepsEveryImageAndCrowdRegions()
    {
        using var files = Fixture(GoodAnnotations);
        var ds = CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img"), CocoInstanceOptions.Evaluation);
        Assert.That(ds.Images.Select(i => i.Id), Is.EqualTo(new long[] { 10, 11, 12, 13 }));
        Assert.That(ds.Load(2).InstanceCount, Is.Zero);
        var crowd = ds.Load(3);
        Assert.That(crowd.IsCrowd, Is.EqualTo(new[] { true }));
        // Counts [31, 3, 27, 3, 27, 3, …] on a 30-row grid: columns 1..3, rows 1..3.
        Assert.That(crowd.Masks![0].Pixels, Is.EqualTo(SquareMask(30, 40, 1, 1, 3)));
    }

    /// <summary>
    /// Which images hold an object, on a hand-made file: 10 one object; 11 a crowd region alone; 12 nothing; 13 a crowd
    /// region and an object; 14 only an object with a zero-width box, which training skips but the evaluation's ground
    /// truth counts; 15 an object listed before its crowd region. So 10, 13, 14 and 15 hold one, 11 and 12 not. Training's
    /// dataset keeps 10, 13 and 15 (14 has no usable annotation) and lists those three, in file order.
    /// </summary>
    [Test]
    public void ImagesHoldingAnObjectAreThoseWithANonCrowdAnnotation()
    {
        var images = Enumerable.Range(10, 6).Select(id => new CocoImage(id, 40, 30, $"{id}.png")).ToList();
        CocoAnnotation Annotation(long id, long image, bool crowd, double width = 5) =>
            new(id, image, 3, [1, 1, width, 5], width * 5, crowd, null);
        var coco = new CocoDataset(images,
        [
            Annotation(1, 10, crowd: false), Annotation(2, 11, crowd: true), Annotation(3, 13, crowd: true), Annotation(4, 13, crowd: false),
            Annotation(5, 14, crowd: false, width: 0), Annotation(6, 15, crowd: false), Annotation(7, 15, crowd: true),
        ], [new CocoCategory(3, "cat", null)]);
        var boxesOnly = new CocoInstanceOptions { WithMasks = false, CheckImageFiles = false };

        var evaluation = new CocoInstanceDataset(coco, "hand.json", "/nowhere", boxesOnly with { SkipImagesWithoutAnnotations = false });
        Assert.That(images.Select(evaluation.HoldsObject), Is.EqualTo(new[] { true, false, false, true, true, true }));
        Assert.That(evaluation.ImagesWithObjects().Select(i => i.Id), Is.EqualTo(new long[] { 10, 13, 14, 15 }));

        var training = new CocoInstanceDataset(coco, "hand.json", "/nowhere", boxesOnly);
        Assert.That(training.Images.Select(i => i.Id), Is.EqualTo(new long[] { 10, 13, 15 }));
        Assert.That(training.ImagesWithObjects().Select(i => i.Id), Is.EqualTo(new long[] { 10, 13, 15 }));
        Assert.That(training.HoldsObject(images[4]), Is.True, "the json's ground truth, whichever images the dataset keeps");
    }

    [Test]
    public void OutlinesOfFewerThanThreePointsAreLeftOutOfTrainingMasks()
    {
        // id 5: a 10×6 rectangle plus a two-point outline (kept: the rectangle alone); id 6: a single two-point outline,
        // which pycocotools' box form would fill as a 300×205 rectangle (skipped: nothing is left to train on).
        using var files = Fixture("""
            {"id": 5, "image_id": 10, "category_id": 3, "bbox": [5, 4, 10, 6], "iscrowd": 0, "segmentation": [[5, 4, 15, 4, 15, 10, 5, 10], [1, 1, 2, 2]]},
            {"id": 6, "image_id": 10, "category_id": 3, "bbox": [30, 20, 8, 5], "iscrowd": 0, "segmentation": [[30, 20, 38, 25]]}
            """);
        var ds = CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img"));
        Assert.That(ds.Warnings.Count(CocoInstanceDataset.PolygonTooShort), Is.EqualTo(1));
        var sample = ds.Load(0);
        Assert.That(sample.AnnotationIds, Is.EqualTo(new long[] { 5 }));
        Assert.That(sample.Masks![0].Pixels, Is.EqualTo(RectangleMask(30, 40, 5, 4, 15, 10)));
    }

    private static byte[] RectangleMask(int h, int w, int x0, int y0, int x1, int y1)
    {
        var m = new byte[h * w];
        for (int y = y0; y < y1; y++) for (int x = x0; x < x1; x++) m[y * w + x] = 1;
        return m;
    }

    [Test]
    public void DegenerateBoxesAreSkippedWithOneCountedWarning()
    {
        using var files = Fixture(GoodAnnotations + """
            , {"id": 5, "image_id": 10, "category_id": 3, "bbox": [3, 3, 0, 4], "iscrowd": 0, "segmentation": [[3, 3, 4, 3, 4, 4]]},
              {"id": 6, "image_id": 11, "category_id": 3, "bbox": [3, 3, 5, -1], "iscrowd": 0, "segmentation": [[3, 3, 4, 3, 4, 4]]},
              {"id": 7, "image_id": 11, "category_id": 3, "bbox": [50, 3, 5, 5], "iscrowd": 0, "segmentation": [[3, 3, 4, 3, 4, 4]]},
              {"id": 8, "image_id": 11, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 0, "segmentation": [[1, 1, 2, 2, 3, 3]]}
            """);
        var ds = CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img"));
        Assert.That(ds.Warnings.Count(CocoInstanceDataset.DegenerateBox), Is.EqualTo(2));
        Assert.That(ds.Warnings.Count(CocoInstanceDataset.BoxOutsideImage), Is.EqualTo(1));
        Assert.That(ds.Warnings.Count(CocoInstanceDataset.DegeneratePolygon), Is.EqualTo(1), "collinear outline");
        var summary = ds.Warnings.Summary();
        Assert.That(summary.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(3), "one line per reason");
        Assert.That(summary, Does.Contain("skipped 2 × " + CocoInstanceDataset.DegenerateBox).And.Contain("annotations[4] (id 5)"));
        Assert.That(ds.Load(0).InstanceCount, Is.EqualTo(2));
        Assert.That(ds.Load(1).InstanceCount, Is.EqualTo(1));
    }

    [Test]
    public void SelfIntersectingPolygonsAreKept()
    {
        // A bow-tie: its signed area cancels to zero, but the even-odd fill covers two triangles.
        using var files = Fixture("""
            {"id": 1, "image_id": 10, "category_id": 3, "bbox": [2, 2, 20, 20], "iscrowd": 0, "segmentation": [[2, 2, 22, 22, 22, 2, 2, 22]]}
            """);
        var ds = CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img"));
        Assert.That(ds.Warnings.Total, Is.Zero);
        int area = ds.Load(0).Masks![0].Area();
        Assert.That(area, Is.InRange(150, 260), "two triangles of 100 px² each, plus boundary pixels");
    }

    private static void AssertError(string annotations, params string[] expected)
    {
        using var files = Fixture(annotations);
        var e = Assert.Throws<VimException>(() => CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img")))!;
        Assert.That(e.Message, Does.Contain("ann.json"), e.Message);
        foreach (var s in expected) Assert.That(e.Message, Does.Contain(s), e.Message);
    }

    [Test]
    public void MalformedJsonNamesTheFile()
    {
        using var files = new DataTestFiles();
        files.WriteText("ann.json", """{"images": [ {"id": 1,, }""");
        var e = Assert.Throws<VimException>(() => CocoInstanceDataset.Load(files.PathOf("ann.json"), files.Root))!;
        Assert.That(e.Message, Does.Contain("ann.json").And.Contain("not valid JSON"));
        e = Assert.Throws<VimException>(() => CocoInstanceDataset.Load(files.PathOf("missing.json"), files.Root))!;
        Assert.That(e.Message, Does.Contain("missing.json").And.Contain("not found"));
    }

    [Test]
    public void MissingFieldsAreNamed()
    {
        AssertError("""{"id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]}""", "annotations[0]", "\"image_id\"");
        AssertError("""{"image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2]}""", "annotations[0]", "\"id\"");
        AssertError(GoodAnnotations + """, {"id": 9, "image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2], "segmentation": []}""",
            "annotations[4] (id 9)", "segmentation");
        using var files = new DataTestFiles();
        files.WriteText("ann.json", Json("", "[]").Replace("\"file_name\": \"a.png\", ", ""));
        var e = Assert.Throws<VimException>(() => CocoInstanceDataset.Load(files.PathOf("ann.json"), files.Root))!;
        Assert.That(e.Message, Does.Contain("categories"));
    }

    [Test]
    public void UnknownImagesAndCategoriesAreErrors()
    {
        AssertError("""{"id": 1, "image_id": 99, "category_id": 3, "bbox": [1, 1, 2, 2], "segmentation": [[1, 1, 3, 1, 3, 3]]}""",
            "annotations[0] (id 1)", "image_id 99");
        AssertError("""{"id": 1, "image_id": 10, "category_id": 4, "bbox": [1, 1, 2, 2], "segmentation": [[1, 1, 3, 1, 3, 3]]}""",
            "annotations[0] (id 1)", "category_id 4", "3, 9, 17");
    }

    [Test]
    public void BadPolygonsAndRlesAreErrors()
    {
        AssertError("""{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2], "segmentation": [[1, 1, 3, 1, 3, 3], [1, 1, 2, 2, 3]]}""",
            "annotations[0]", "even number");
        AssertError("""{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2], "segmentation": {"size": [30, 40], "counts": [5, 3]}}""",
            "annotations[0]", "sum to 8", "1200");
        AssertError("""{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2], "segmentation": {"size": [30, 40], "counts": "52"}}""",
            "annotations[0] (id 1)", "sum to", "1200");
        AssertError("""{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2], "segmentation": {"size": [20, 40], "counts": [800]}}""",
            "annotations[0] (id 1)", "RLE size [20, 40]", "30x40");
        AssertError("""{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2], "segmentation": {"size": ["30", 40], "counts": [1200]}}""",
            "annotations[0]", "segmentation.size", "[height, width]");
    }

    /// <summary>
    /// Images the json lists but the folder lacks are found when the dataset is built, not when the loader reaches them:
    /// the error names the json, the count, the file names (also of an image training skips, which evaluation of the
    /// same json reads) and the folder searched.
    /// </summary>
    [Test]
    public void ImagesMissingOnDiskAreRefusedAtLoadNamingTheJsonTheFilesAndTheFolder()
    {
        using var files = Fixture(GoodAnnotations);
        File.Delete(files.PathOf("img", "b.png"));
        File.Delete(files.PathOf("img", "empty.png"));
        foreach (var options in new[] { new CocoInstanceOptions(), CocoInstanceOptions.Evaluation })
        {
            var e = Assert.Throws<VimException>(() => CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img"), options))!;
            Assert.That(e.Message, Is.EqualTo($"{files.PathOf("ann.json")}: 2 of the 4 images it lists not found in {files.PathOf("img")} " +
                "(file_name: b.png, empty.png); expected each images[i].file_name to be a file in that folder."));
        }
        Assert.That(CocoInstanceDataset.MissingImageFiles(CocoDataset.Load(files.PathOf("ann.json")).Images, files.PathOf("img")).Select(i => i.Id),
            Is.EqualTo(new long[] { 11, 12 }), "in the json's order");

        // Seven of seven missing, one in a subfolder: the first five are named, in the json's order.
        var names = new[] { "g.png", "f.png", "e.png", "d.png", "c.png", "b.png", "sub/a.png" };
        var images = string.Join(", ", names.Select((n, i) => $$"""{"id": {{i + 1}}, "file_name": "{{n}}", "width": 4, "height": 4}"""));
        files.WriteText("seven.json", $$"""{"images": [{{images}}], "annotations": [], "categories": {{Categories}}}""");
        var seven = Assert.Throws<VimException>(() => CocoInstanceDataset.Load(files.PathOf("seven.json"), files.PathOf("img"), CocoInstanceOptions.Evaluation))!;
        Assert.That(seven.Message, Does.Contain("7 of the 7 images").And.Contain("(first 5: g.png, f.png, e.png, d.png, c.png)"));
        Assert.That(seven.Message, Does.Not.Contain("sub/a.png"));
        foreach (var name in names) files.WriteRgb(Path.Combine("img", name), 4, 4, (_, _) => (1, 2, 3));
        Assert.That(CocoInstanceDataset.Load(files.PathOf("seven.json"), files.PathOf("img"), CocoInstanceOptions.Evaluation).Count, Is.EqualTo(7));
    }

    [Test]
    public void MissingCorruptOrMismatchedImagesAreErrorsNamingTheFile()
    {
        using var files = Fixture(GoodAnnotations);
        File.WriteAllBytes(files.PathOf("img", "b.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5]);
        var ds = CocoInstanceDataset.Load(files.PathOf("ann.json"), files.PathOf("img"));
        // Deleted after the dataset was built (the loader's own error).
        File.Delete(files.PathOf("img", "a.png"));
        var e = Assert.Throws<VimException>(() => ds.Load(0))!;
        Assert.That(e.Message, Does.Contain("a.png").And.Contain("not found"));
        e = Assert.Throws<VimException>(() => ds.Load(1))!;
        Assert.That(e.Message, Does.Contain("b.png").And.Contain("cannot decode"));
        files.WriteRgb(Path.Combine("img", "b.png"), 31, 40, (_, _) => (1, 2, 3));
        e = Assert.Throws<VimException>(() => ds.Load(1))!;
        Assert.That(e.Message, Does.Contain("b.png").And.Contain("40x31").And.Contain("image id 11"));
    }
}
