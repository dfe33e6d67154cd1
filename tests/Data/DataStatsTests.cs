using System.Text.Json;
using NUnit.Framework;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Evaluation;
using Vim.Data.Statistics;
using Vim.Tools;
using Vim.Tools.Commands;

namespace Vim.Tests.Data;

/// <summary>
/// `vim data stats`: COCO and ADE statistics of tiny hand-made datasets against counts, shares and medians worked out by
/// hand, COCOeval's inclusive area-range boundaries, stats.json read back, and errors naming the option or file.
/// </summary>
public class DataStatsTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    // Five images, categories 1 "cat", 3 "dog", 7 "bird" (bird has no annotation):
    //   image 1 (640×480): cat area 1024 = 32² (box 32×32), cat area 800 (box 20×40), dog area 9216 = 96² (box 96×96)
    //   image 2 (640×480): cat area 5000 (box 100×50), dog crowd
    //   image 3 (320×240): dog crowd only (no instance: training skips it)
    //   image 4 (320×240): nothing
    //   image 5 (640×480): cat area 9217 (box 60×30), cat area 0 with a zero-width box, dog without "area" (box 8×2)
    private const string CocoJson = """
        {"images": [
           {"id": 1, "file_name": "1.png", "width": 640, "height": 480},
           {"id": 2, "file_name": "2.png", "width": 640, "height": 480},
           {"id": 3, "file_name": "3.png", "width": 320, "height": 240},
           {"id": 4, "file_name": "4.png", "width": 320, "height": 240},
           {"id": 5, "file_name": "5.png", "width": 640, "height": 480}],
         "annotations": [
           {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 32], "segmentation": [[0, 0, 32, 0, 32, 32, 0, 32]], "area": 1024, "iscrowd": 0},
           {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 40], "segmentation": [[10, 10, 30, 10, 30, 50, 10, 50]], "area": 800, "iscrowd": 0},
           {"id": 3, "image_id": 1, "category_id": 3, "bbox": [0, 0, 96, 96], "segmentation": [[0, 0, 96, 0, 96, 96, 0, 96]], "area": 9216, "iscrowd": 0},
           {"id": 4, "image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 50], "segmentation": [[0, 0, 100, 0, 100, 50, 0, 50]], "area": 5000, "iscrowd": 0},
           {"id": 5, "image_id": 2, "category_id": 3, "bbox": [200, 200, 200, 100], "segmentation": [[200, 200, 400, 200, 400, 300, 200, 300]], "area": 20000, "iscrowd": 1},
           {"id": 6, "image_id": 3, "category_id": 3, "bbox": [0, 0, 50, 50], "segmentation": [[0, 0, 50, 0, 50, 50, 0, 50]], "area": 2500, "iscrowd": 1},
           {"id": 7, "image_id": 5, "category_id": 1, "bbox": [0, 0, 60, 30], "segmentation": [[0, 0, 60, 0, 60, 30, 0, 30]], "area": 9217, "iscrowd": 0},
           {"id": 8, "image_id": 5, "category_id": 1, "bbox": [0, 0, 0, 10], "segmentation": [[0, 0, 0, 0, 0, 10, 0, 10]], "area": 0, "iscrowd": 0},
           {"id": 9, "image_id": 5, "category_id": 3, "bbox": [5, 5, 8, 2], "segmentation": [[5, 5, 13, 5, 13, 7, 5, 7]], "iscrowd": 0}],
         "categories": [{"id": 1, "name": "cat"}, {"id": 7, "name": "bird"}, {"id": 3, "name": "dog"}]}
        """;

    private string WriteCoco()
    {
        var json = _files.WriteText(Path.Combine("coco", "annotations", "instances_train.json"), CocoJson);
        foreach (var (id, w, h) in new[] { (1, 640, 480), (2, 640, 480), (3, 320, 240), (4, 320, 240), (5, 640, 480) })
            _files.WriteGray(Path.Combine("coco", "train", $"{id}.png"), h / 80, w / 80, (_, _) => 90);
        return json;
    }

    [Test]
    public void CocoCountsSharesAndMediansMatchTheHandCount()
    {
        var path = WriteCoco();
        var stats = CocoDatasetStatistics.Compute(CocoDataset.Load(path), path);

        Assert.That(stats.Images, Is.EqualTo(5));
        Assert.That(stats.ImagesWithoutAnnotations, Is.EqualTo(1), "image 4");
        Assert.That(stats.ImagesWithoutInstances, Is.EqualTo(2), "images 3 (crowd only) and 4");
        Assert.That(stats.Instances, Is.EqualTo(7));
        Assert.That(stats.Crowd, Is.EqualTo(2));
        Assert.That(stats.InstancesWithoutArea, Is.EqualTo(1));
        Assert.That(stats.InstancesWithoutBox, Is.EqualTo(1), "the zero-width box");
        // Instances per image 3, 1, 0, 0, 3.
        Assert.That(stats.InstancesPerImage.Mean, Is.EqualTo(1.4).Within(1e-12));
        Assert.That(stats.InstancesPerImage.Median, Is.EqualTo(1));
        Assert.That(stats.InstancesPerImage.Max, Is.EqualTo(3));
        Assert.That(stats.InstancesPerImageHistogram, Is.EqualTo(new[] { 2, 1, 0, 2 }));
        // Areas 1024, 800, 9216, 5000, 9217, 0 (one instance has none): small 1024, 800, 0; medium 1024, 9216, 5000;
        // large 9216, 9217.
        Assert.That(stats.AreaRanges.Select(r => r.Label), Is.EqualTo(new[] { "small", "medium", "large" }));
        Assert.That(stats.AreaRanges.Select(r => r.Instances), Is.EqualTo(new[] { 3, 3, 2 }));
        Assert.That(stats.AreaRanges.Select(r => r.Share), Is.EqualTo(new[] { 3 / 6.0, 3 / 6.0, 2 / 6.0 }).Within(1e-12));
        Assert.That(stats.ImageSizes, Is.EqualTo(new[] { new ImageSizeCount(640, 480, 3), new ImageSizeCount(320, 240, 2) }));
        Assert.That(stats.ImageWidth.Median, Is.EqualTo(640));
        Assert.That(stats.ImageWidth.Mean, Is.EqualTo(512));
        Assert.That(stats.ImageHeight.Min, Is.EqualTo(240));

        Assert.That(stats.Categories.Select(c => c.Name), Is.EqualTo(new[] { "cat", "dog", "bird" }), "ascending id, the class order");
        var cat = stats.Categories[0];
        Assert.That((cat.Id, cat.Instances, cat.Images, cat.Crowd, cat.WithoutArea), Is.EqualTo((1L, 5, 3, 0, 0)));
        Assert.That(cat.AreaRanges.Select(r => r.Instances), Is.EqualTo(new[] { 3, 2, 1 }));
        Assert.That(cat.AreaRanges.Select(r => r.Share), Is.EqualTo(new[] { 0.6, 0.4, 0.2 }).Within(1e-12));
        // Boxes 32×32, 20×40, 100×50, 60×30 (the zero-width one left out): an even count, so the mean of the middle two.
        Assert.That(cat.MedianWidth, Is.EqualTo((32 + 60) / 2.0));
        Assert.That(cat.MedianHeight, Is.EqualTo((32 + 40) / 2.0));
        Assert.That(cat.MedianAspectRatio, Is.EqualTo((1 + 2) / 2.0), "ratios 1, 0.5, 2, 2");
        var dog = stats.Categories[1];
        Assert.That((dog.Id, dog.Instances, dog.Images, dog.Crowd, dog.WithoutArea), Is.EqualTo((3L, 2, 2, 2, 1)));
        Assert.That(dog.AreaRanges.Select(r => r.Instances), Is.EqualTo(new[] { 0, 1, 1 }), "96² is medium and large");
        Assert.That(dog.AreaRanges.Select(r => r.Share), Is.EqualTo(new[] { 0.0, 1, 1 }));
        Assert.That(dog.MedianWidth, Is.EqualTo((8 + 96) / 2.0));
        Assert.That(dog.MedianAspectRatio, Is.EqualTo((1 + 4) / 2.0));
        var bird = stats.Categories[2];
        Assert.That((bird.Instances, bird.Images, bird.Crowd), Is.EqualTo((0, 0, 0)));
        Assert.That(bird.AreaRanges.Select(r => r.Share), Is.All.NaN);
        Assert.That(bird.MedianWidth, Is.NaN);
    }

    [TestCase(32 * 32 - 0.5, true, false, false)]
    [TestCase(32 * 32, true, true, false)]
    [TestCase(32 * 32 + 0.5, false, true, false)]
    [TestCase(96 * 96, false, true, true)]
    [TestCase(96 * 96 + 0.5, false, false, true)]
    public void AreasOnAThresholdCountInBothRangesAsCocoEvalComparesThem(double area, bool small, bool medium, bool large)
    {
        var coco = CocoDataset.Parse(JsonDocument.Parse($$"""
            {"images": [{"id": 1, "width": 10, "height": 10}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": {{area.ToString(System.Globalization.CultureInfo.InvariantCulture)}}, "iscrowd": 0}],
             "categories": [{"id": 1, "name": "a"}]}
            """).RootElement, "case");
        var stats = CocoDatasetStatistics.Compute(coco, "case");
        Assert.That(stats.AreaRanges.Select(r => r.Instances), Is.EqualTo(new[] { small ? 1 : 0, medium ? 1 : 0, large ? 1 : 0 }));
        // The evaluator's own ranges agree: COCOeval counts such an object in each range it belongs to.
        var evaluator = new CocoEvalParams().AreaRanges.Where(r => r.Label != "all");
        Assert.That(evaluator.Select(r => r.Contains(area)), Is.EqualTo(new[] { small, medium, large }));
    }

    [Test]
    public void TheCocoCommandWritesJsonThatReadsBackAndMarkdownThatLinksItsCharts()
    {
        WriteCoco();
        var dir = _files.PathOf("out");
        var output = new StringWriter();
        var written = DataStatsCommand.Run(DemoKind.Coco, _files.PathOf("coco"), "train", null, dir, 0, output);

        foreach (var file in written) Assert.That(File.Exists(file), file);
        Assert.That(Directory.GetFiles(dir).Where(f => f.Contains(".tmp")), Is.Empty, "no temporary file left");
        var json = File.ReadAllText(Path.Combine(dir, DatasetStatisticsReport.JsonName));
        var read = JsonSerializer.Deserialize<CocoDatasetStatistics>(json, DatasetStatisticsReport.JsonOptions)!;
        var computed = CocoDatasetStatistics.Compute(CocoDataset.Load(_files.PathOf("coco", "annotations", "instances_train.json")),
            _files.PathOf("coco", "annotations", "instances_train.json"));
        Assert.That(JsonSerializer.Serialize(read, DatasetStatisticsReport.JsonOptions), Is.EqualTo(json), "every field survives the round trip");
        Assert.That(read.Categories[1].AreaRanges[2].Share, Is.EqualTo(1));
        Assert.That(read.Categories[2].MedianWidth, Is.NaN, "null in the file reads back as NaN");
        Assert.That(read.InstancesPerImageHistogram, Is.EqualTo(computed.InstancesPerImageHistogram));
        Assert.That(read.InstancesPerImage, Is.EqualTo(computed.InstancesPerImage));
        using (var document = JsonDocument.Parse(json))
        {
            var bird = document.RootElement.GetProperty("categories")[2];
            Assert.That(bird.GetProperty("name").GetString(), Is.EqualTo("bird"));
            Assert.That(bird.GetProperty("median_width").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(document.RootElement.GetProperty("images_without_annotations").GetInt32(), Is.EqualTo(1));
        }

        var markdown = File.ReadAllText(Path.Combine(dir, DatasetStatisticsReport.MarkdownName));
        Assert.That(markdown, Does.Contain("| 1 | cat | 5 | 3 | 0 | 60 % | 40 % | 20 % | 46 | 36 | 1.5 |"));
        var links = System.Text.RegularExpressions.Regex.Matches(markdown, @"!\[[^\]]*\]\(([^)]+)\)").Select(m => m.Groups[1].Value).ToArray();
        Assert.That(links, Is.EquivalentTo(new[] { "category_instances.png", "category_images.png", "box_sizes.png", "instances_per_image.png", "area_ranges.png" }));
        foreach (var link in links) Assert.That(new FileInfo(Path.Combine(dir, link)).Length, Is.GreaterThan(1000), link);
        Assert.That(output.ToString(), Does.Contain("COCO train: 5 images, 9 annotations, 3 categories")
            .And.Contain("annotation with a zero/negative-size or non-finite box"), "what training skips is reported as data check reports it");
    }

    // ADE layout, classes sky and tree; raw label values (reduce_zero_label: 0 and 255 ignored, 1 → sky, 2 → tree):
    //   a (4 wide, 3 high): 0 1 1 2 / 1 1 255 2 / 0 0 1 1   → sky 6, tree 2, ignored 4 (three 0s, one 255)
    //   b (2×2):            all 1                           → sky 4
    //   c (3 wide, 2 high): 0 0 255 / 255 255 0             → ignored 6 (three 0s, three 255s)
    private static readonly byte[][] LabelsA = [[0, 1, 1, 2], [1, 1, 255, 2], [0, 0, 1, 1]];
    private static readonly byte[][] LabelsB = [[1, 1], [1, 1]];
    private static readonly byte[][] LabelsC = [[0, 0, 255], [255, 255, 0]];

    private string WriteAde()
    {
        foreach (var (name, labels) in new[] { ("a", LabelsA), ("b", LabelsB), ("c", LabelsC) })
        {
            int h = labels.Length, w = labels[0].Length;
            _files.WriteRgb(Path.Combine("ade", "images", "training", $"{name}.jpg"), h, w, (_, _) => (100, 120, 140));
            _files.WriteGray(Path.Combine("ade", "annotations", "training", $"{name}.png"), h, w, (y, x) => labels[y][x]);
        }
        return _files.PathOf("ade");
    }

    [TestCase(1)]
    [TestCase(3)]
    public void AdePixelSharesWithReduceZeroLabelMatchTheHandCount(int threads)
    {
        var root = WriteAde();
        var stats = SegmentationDatasetStatistics.Compute(SegmentationFolderDataset.Ade20k(root, "training", ["sky", "tree", "water"]), threads: threads);

        Assert.That(stats.Images, Is.EqualTo(3));
        Assert.That(stats.ReduceZeroLabel, Is.True);
        Assert.That(stats.Pixels, Is.EqualTo(12 + 4 + 6));
        Assert.That(stats.LabelledPixels, Is.EqualTo(12));
        Assert.That(stats.IgnoredPixels, Is.EqualTo(10));
        Assert.That(stats.IgnoredShare, Is.EqualTo(10 / 22.0).Within(1e-15));
        Assert.That(stats.Classes.Select(c => c.Pixels), Is.EqualTo(new long[] { 10, 2, 0 }));
        Assert.That(stats.Classes.Select(c => c.PixelShare), Is.EqualTo(new[] { 10 / 12.0, 2 / 12.0, 0 }).Within(1e-15));
        Assert.That(stats.Classes.Select(c => c.Images), Is.EqualTo(new[] { 2, 1, 0 }));
        Assert.That(stats.Classes.Select(c => c.ImageShare), Is.EqualTo(new[] { 2 / 3.0, 1 / 3.0, 0 }).Within(1e-15));
        Assert.That(stats.AbsentClasses, Is.EqualTo(1));
        // Sizes 4×3, 2×2, 3×2: one image each, so ordered by width.
        Assert.That(stats.ImageSizes, Is.EqualTo(new[] { new ImageSizeCount(2, 2, 1), new ImageSizeCount(3, 2, 1), new ImageSizeCount(4, 3, 1) }));
        Assert.That((stats.ImageWidth.Median, stats.ImageHeight.Median, stats.ImageHeight.Max), Is.EqualTo((3.0, 2.0, 3.0)));
    }

    [Test]
    public void WithoutReduceZeroLabelZeroIsAClassAndOnlyTheIgnoreIndexIsIgnored()
    {
        var root = WriteAde();
        var dataset = new SegmentationFolderDataset(new SegmentationFolderOptions
        {
            ImageDir = Path.Combine(root, "images", "training"),
            AnnotationDir = Path.Combine(root, "annotations", "training"),
            ImageSuffix = ".jpg",
            AnnotationSuffix = ".png",
            ClassNames = ["background", "sky", "tree"],
            ReduceZeroLabel = false,
        });
        var stats = SegmentationDatasetStatistics.Compute(dataset);
        // background: three 0s in a and three in c; ignored: one 255 in a, three in c.
        Assert.That(stats.Classes.Select(c => c.Pixels), Is.EqualTo(new long[] { 6, 10, 2 }));
        Assert.That(stats.Classes.Select(c => c.Images), Is.EqualTo(new[] { 2, 2, 1 }));
        Assert.That(stats.IgnoredPixels, Is.EqualTo(4));
        Assert.That(stats.Classes[0].PixelShare, Is.EqualTo(6 / 18.0).Within(1e-15));
    }

    [Test]
    public void TheAdeCommandReadsClassesFromTheOptionAndWritesItsFiles()
    {
        var root = WriteAde();
        var classes = _files.WriteText("classes.txt", "sky\ntree\nwater\n");
        var dir = _files.PathOf("out");
        var output = new StringWriter();
        var written = DataStatsCommand.Run(DemoKind.Ade, root, "train", classes, dir, 2, output);

        Assert.That(written.Select(Path.GetFileName), Is.EquivalentTo(new[] { "class_pixel_share.png", "class_images.png", "stats.json", "stats.md" }));
        var read = JsonSerializer.Deserialize<SegmentationDatasetStatistics>(File.ReadAllText(Path.Combine(dir, "stats.json")), DatasetStatisticsReport.JsonOptions)!;
        Assert.That(read.Classes.Select(c => c.Name), Is.EqualTo(new[] { "sky", "tree", "water" }));
        Assert.That(read.Classes.Select(c => c.Pixels), Is.EqualTo(new long[] { 10, 2, 0 }));
        Assert.That(read.IgnoredPixels, Is.EqualTo(10));
        Assert.That(File.ReadAllText(Path.Combine(dir, "stats.md")), Does.Contain("| 1 | tree | 2 | 16.7 % | 1 | 33.3 % |"));
        Assert.That(output.ToString(), Does.Contain("ADE train: 3 image/label pairs, 3 classes").And.Contain("read 3 label maps"));
    }

    [Test]
    public void InstanceCountsBeyondSixtyAreBinnedWithoutLosingImages()
    {
        var (labels, images) = DatasetStatisticsReport.InstanceCountBins([2, 1, 0, 2]);
        Assert.That(labels, Is.EqualTo(new[] { "0", "1", "2", "3" }));
        Assert.That(images, Is.EqualTo(new[] { 2.0, 1, 0, 2 }));
        var wide = Enumerable.Range(0, 121).Select(n => n % 7).ToArray();
        (labels, images) = DatasetStatisticsReport.InstanceCountBins(wide);
        // 121 counts in bins of ⌈121 / 60⌉ = 3: 40 full bins and "120" alone.
        Assert.That(labels, Has.Count.EqualTo(41));
        Assert.That((labels[0], labels[1], labels[^1]), Is.EqualTo(("0–2", "3–5", "120")));
        Assert.That(images[1], Is.EqualTo(3 + 4 + 5));
        Assert.That(images.Sum(), Is.EqualTo(wide.Sum()));
    }

    [Test]
    public void BadOptionsAndFilesAreRefusedByName()
    {
        var root = WriteAde();
        string Refusal(params string[] args)
        {
            var error = new StringWriter();
            Assert.That(VimCli.Run(["data", "stats", .. args], error), Is.EqualTo(1), string.Join(" ", args));
            return error.ToString();
        }

        Assert.That(Refusal("--kind", "voc", "--root", root), Does.StartWith("error: --kind: expected coco or ade"));
        Assert.That(Refusal("--kind", "ade", "--root", _files.PathOf("nowhere")), Does.StartWith("error: --root ").And.Contain("nowhere").And.Contain("folder not found"));
        Assert.That(Refusal("--kind", "ade", "--root", root, "--threads", "-2"), Does.StartWith("error: --threads: expected 0"));
        Assert.That(Refusal("--kind", "coco", "--root", root, "--classes", "x.txt"), Does.StartWith("error: --classes x.txt: applies to --kind ade only"));
        var file = _files.WriteText("file.txt", "x");
        Assert.That(Refusal("--kind", "ade", "--root", root, "--out", Path.Combine(file, "stats")), Does.StartWith("error: --out ").And.Contain(file));
        Assert.That(Refusal("--kind", "coco", "--root", root, "--split", "val2017", "--out", _files.PathOf("o1")),
            Does.Contain(Path.Combine(root, "annotations", "instances_val2017.json")).And.Contain("not found"));
        // A label value the classes do not cover: the label map is named, and no statistics are written.
        _files.WriteGray(Path.Combine("ade", "annotations", "training", "b.png"), 2, 2, (y, x) => y == 1 && x == 1 ? (byte)3 : (byte)1);
        var refusal = Refusal("--kind", "ade", "--root", root, "--classes", _files.WriteText("two.txt", "sky\ntree\n"), "--out", _files.PathOf("o2"));
        Assert.That(refusal, Does.Contain(Path.Combine(root, "annotations", "training", "b.png")).And.Contain("label value 3 at (x=1, y=1)"));
        Assert.That(File.Exists(_files.PathOf("o2", "stats.json")), Is.False);
    }
}
