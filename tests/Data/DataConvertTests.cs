using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Coco;
using Vim.Data.Converters;
using Vim.Data.Datasets;
using Vim.Tools;

namespace Vim.Tests.Data;

/// <summary>
/// `vim data convert voc|images|cityscapes` (mmdet's pascal_voc.py and images2coco.py, mmseg's cityscapes.py): hand-made
/// inputs against hand-computed outputs, the outputs read back by our datasets, and bad inputs refused naming the file and field.
/// </summary>
public class DataConvertTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>A VOC annotation XML: the image size and each object's class, difficult and truncated flags and 1-based corners.</summary>
    internal static string VocXml(int width, int height, params (string Name, int Difficult, int Truncated, int XMin, int YMin, int XMax, int YMax)[] objects) =>
        $"<annotation><folder>VOC2007</folder><size><width>{width}</width><height>{height}</height><depth>3</depth></size>" +
        string.Concat(objects.Select(o => $"<object><name>{o.Name}</name><pose>Left</pose><truncated>{o.Truncated}</truncated><difficult>{o.Difficult}</difficult>" +
            $"<bndbox><xmin>{o.XMin}</xmin><ymin>{o.YMin}</ymin><xmax>{o.XMax}</xmax><ymax>{o.YMax}</ymax></bndbox></object>")) +
        "</annotation>";

    /// <summary>A VOC2007 tree: trainval 000001 (a difficult person listed before a truncated dog) and 000002 (a cat), test 000003 (no objects).</summary>
    private string WriteVocTree()
    {
        _files.WriteText("VOCdevkit/VOC2007/ImageSets/Main/trainval.txt", "000001\n000002\n");
        _files.WriteText("VOCdevkit/VOC2007/ImageSets/Main/test.txt", "000003\n");
        _files.WriteText("VOCdevkit/VOC2007/Annotations/000001.xml", VocXml(60, 40, ("person", 1, 0, 1, 1, 10, 20), ("dog", 0, 1, 11, 6, 30, 25)));
        _files.WriteText("VOCdevkit/VOC2007/Annotations/000002.xml", VocXml(50, 45, ("cat", 0, 0, 21, 11, 40, 30)));
        _files.WriteText("VOCdevkit/VOC2007/Annotations/000003.xml", VocXml(32, 32));
        _files.WriteRgb("VOCdevkit/VOC2007/JPEGImages/000001.jpg", 40, 60, (y, x) => ((byte)x, (byte)y, 90));
        _files.WriteRgb("VOCdevkit/VOC2007/JPEGImages/000002.jpg", 45, 50, (y, x) => ((byte)y, (byte)x, 30));
        _files.WriteRgb("VOCdevkit/VOC2007/JPEGImages/000003.jpg", 32, 32, (y, x) => (10, 20, 30));
        return _files.PathOf("VOCdevkit");
    }

    /// <summary>
    /// Boxes as mmdet computes them from VOC's 1-based corners (each − 1; width xmax − xmin; area width·height), the
    /// box's corners as polygon, the difficult object after the others as a crowd region, ids from 1, categories 1–20 in
    /// mmdet's order; the json loads as a COCO dataset with the images under VOCdevkit, and `vim data check` passes.
    /// </summary>
    [Test]
    public void VocAnnotationsBecomeMmdetsCocoBoxes()
    {
        var devkit = WriteVocTree();
        var written = PascalVocConverter.Convert(devkit, devkit, ["2007"], PascalVocConverter.DefaultSplits, null);
        // train and val lists are absent: skipped, as mmdet skips them.
        Assert.That(written.Select(w => w.Name), Is.EqualTo(new[] { "voc07_trainval", "voc07_test" }));

        var coco = CocoDataset.Load(Path.Combine(devkit, "voc07_trainval.json"));
        Assert.That(coco.Images, Is.EqualTo(new[]
        {
            new CocoImage(1, 60, 40, "VOC2007/JPEGImages/000001.jpg"), new CocoImage(2, 50, 45, "VOC2007/JPEGImages/000002.jpg"),
        }));
        Assert.That(coco.Categories, Has.Count.EqualTo(20));
        Assert.That((coco.Categories[0].Id, coco.Categories[0].Name, coco.Categories[11].Id, coco.Categories[11].Name, coco.Categories[19].Name),
            Is.EqualTo((1L, "aeroplane", 12L, "dog", "tvmonitor")));
        var a = coco.Annotations;
        Assert.That(a.Select(x => (x.Id, x.ImageId, x.CategoryId, x.IsCrowd)), Is.EqualTo(new[]
        {
            (1L, 1L, 12L, false), // dog (truncated: an ordinary object)
            (2L, 1L, 15L, true), // person, difficult: after the image's other objects
            (3L, 2L, 8L, false), // cat
        }));
        // dog 11,6,30,25 → (10, 5) to (29, 24); person 1,1,10,20 → (0, 0) to (9, 19); cat 21,11,40,30 → (20, 10) to (39, 29).
        Assert.That(a[0].Bbox, Is.EqualTo(new double[] { 10, 5, 19, 19 }));
        Assert.That(a[1].Bbox, Is.EqualTo(new double[] { 0, 0, 9, 19 }));
        Assert.That(a[2].Bbox, Is.EqualTo(new double[] { 20, 10, 19, 19 }));
        Assert.That(a.Select(x => x.Area), Is.EqualTo(new double?[] { 361, 171, 361 }));
        Assert.That(a[0].Segmentation!.Polygons!.Single(), Is.EqualTo(new double[] { 10, 5, 10, 24, 29, 24, 29, 5 }));
        Assert.That(CocoDataset.Load(Path.Combine(devkit, "voc07_test.json")).Images.Single(), Is.EqualTo(new CocoImage(1, 32, 32, "VOC2007/JPEGImages/000003.jpg")));

        // Training reads it with the images under VOCdevkit (data.img_dir '.', shared by the splits).
        var layout = DatasetLayout.Of(new DataConfig { Type = "coco", Root = devkit, AnnFile = "voc{split}.json", ImgDir = "." });
        var dataset = CocoInstanceDataset.Load(layout.AnnotationFile("07_trainval"), layout.ImageDir("07_trainval"));
        var sample = dataset.Load(0);
        Assert.That((sample.Height, sample.Width), Is.EqualTo((40, 60)));
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 10, 5, 29, 24, 0, 0, 9, 19 }));
        Assert.That(sample.Labels, Is.EqualTo(new[] { 11, 14 }));
        Assert.That(sample.IsCrowd, Is.EqualTo(new[] { false, true }));
        Assert.That(VimCli.Run(["data", "check", "--kind", "coco", "--root", devkit, "--split", "07_trainval", "--ann-file", "voc{split}.json", "--img-dir", ".",
            "--decode", "-1"], new StringWriter()), Is.EqualTo(0));
    }

    /// <summary>Both years give their own files and the combined voc0712 ones (not for test), image ids running on across the years.</summary>
    [Test]
    public void BothYearsAlsoGiveTheCombinedSets()
    {
        var devkit = WriteVocTree();
        _files.WriteText("VOCdevkit/VOC2012/ImageSets/Main/trainval.txt", "2008_000001\n");
        _files.WriteText("VOCdevkit/VOC2012/Annotations/2008_000001.xml", VocXml(20, 10, ("bus", 0, 0, 2, 3, 12, 9)));
        var output = _files.PathOf("out");
        Assert.That(VimCli.Run(["data", "convert", "voc", "--root", devkit, "--out", output, "--splits", "trainval,test"], new StringWriter()), Is.EqualTo(0));
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal), Is.EqualTo(new[] { "voc0712_trainval.json", "voc07_test.json", "voc07_trainval.json", "voc12_trainval.json" }));
        var both = CocoDataset.Load(Path.Combine(output, "voc0712_trainval.json"));
        Assert.That(both.Images.Select(i => (i.Id, i.FileName)), Is.EqualTo(new[]
        {
            (1L, "VOC2007/JPEGImages/000001.jpg"), (2L, "VOC2007/JPEGImages/000002.jpg"), (3L, "VOC2012/JPEGImages/2008_000001.jpg"),
        }));
        Assert.That(both.Annotations.Last(), Is.EqualTo(both.Annotations.Last() with { Id = 4, ImageId = 3, CategoryId = 6 }));
        Assert.That(both.Annotations.Last().Bbox, Is.EqualTo(new double[] { 1, 2, 10, 6 }));
    }

    [TestCase("<annotation><object><name>dog</name></object></annotation>", "<size> missing")]
    [TestCase("<annotation><size><width>9</width></size></annotation>", "<size> has no <height>")]
    [TestCase("<annotation><size><width>9</width><height>9</height></size><object><name>dog</name><difficult>0</difficult></object></annotation>",
        "<object> 1 (dog) has no <bndbox>")]
    [TestCase("<annotation><size><width>9</width><height>9</height></size><object><name>wolf</name></object></annotation>",
        "<object> 1 <name> \"wolf\" is not a VOC class")]
    [TestCase("<annotation><size><width>9</width><height>9</height></size><object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>a</xmax><ymax>2</ymax></bndbox></object></annotation>",
        "<object> 1 (dog) <xmax> is \"a\"; expected a number")]
    [TestCase("<annotation><size>", "not well-formed XML")]
    public void BadVocAnnotationsAreRefusedNamingTheFileAndField(string xml, string expected)
    {
        var path = _files.WriteText("bad.xml", xml);
        var e = Assert.Throws<VimException>(() => PascalVocConverter.ParseXml(path, "x.jpg"))!;
        Assert.That(e.Message, Does.StartWith(path + ": "));
        Assert.That(e.Message, Does.Contain(expected));
    }

    /// <summary>
    /// Image sizes as stored (a PNG, a JPEG, a JPEG whose EXIF says "rotate", a BMP decoded for want of a header reader),
    /// paths relative to the folder in ordinal order, excluded extensions left out, the categories given; the file reads
    /// as the unlabelled split `vim test --format-only` predicts, every image found.
    /// </summary>
    [Test]
    public void AnImageFolderBecomesAnImageInfoFile()
    {
        _files.WriteRgb("data/mysplit/b.png", 20, 30, (y, x) => (1, 2, 3));
        _files.WriteRgb("data/mysplit/sub/a.jpg", 9, 17, (y, x) => (1, 2, 3));
        _files.WriteJpegRotatedByExif("data/mysplit/c.jpg", 12, 5, new Scalar(1, 2, 3));
        using (var bmp = new Mat(7, 11, MatType.CV_8UC3, new Scalar(4, 5, 6))) _files.Write("data/mysplit/d.bmp", bmp);
        _files.WriteText("data/mysplit/notes.TXT", "not an image");
        var classes = _files.WriteText("classes.txt", "apple\n\nbanana\n");
        var output = _files.PathOf("data", "annotations", "image_info_mysplit.json");
        Assert.That(VimCli.Run(["data", "convert", "images", "--images", _files.PathOf("data", "mysplit"), "--out", output, "--classes", classes,
            "--exclude-extensions", ".txt"], new StringWriter()), Is.EqualTo(0));
        var coco = CocoDataset.Load(output);
        Assert.That(coco.Images, Is.EqualTo(new[]
        {
            new CocoImage(1, 30, 20, "b.png"), new CocoImage(2, 5, 12, "c.jpg"), new CocoImage(3, 11, 7, "d.bmp"), new CocoImage(4, 17, 9, "sub/a.jpg"),
        }));
        Assert.That(coco.Annotations, Is.Empty);
        Assert.That(coco.Categories, Is.EqualTo(new[] { new CocoCategory(1, "apple", "none"), new CocoCategory(2, "banana", "none") }));
        var layout = DatasetLayout.Coco(_files.PathOf("data"));
        var unlabelled = CocoInstanceDataset.Load(output, layout.ImageDir("mysplit"), CocoInstanceOptions.Evaluation with { WithMasks = false });
        Assert.That(unlabelled.Count, Is.EqualTo(4));
        Assert.That((unlabelled.Load(3).Height, unlabelled.Load(3).Width), Is.EqualTo((9, 17)));

        // --from-coco copies another file's categories, ids and supercategories included.
        var fromCoco = _files.PathOf("copied.json");
        CocoDatasetFile.Save(_files.PathOf("train.json"), new CocoDataset([], [], [new CocoCategory(3, "x", "s"), new CocoCategory(7, "y", null)]));
        Assert.That(VimCli.Run(["data", "convert", "images", "--images", _files.PathOf("data", "mysplit", "sub"), "--out", fromCoco, "--from-coco",
            _files.PathOf("train.json")], new StringWriter()), Is.EqualTo(0));
        Assert.That(CocoDataset.Load(fromCoco).Categories, Is.EqualTo(new[] { new CocoCategory(3, "x", "s"), new CocoCategory(7, "y", null) }));
    }

    [Test]
    public void AFileThatIsNotAnImageIsRefusedByName()
    {
        var bad = _files.WriteText("images/broken.jpg", "not a jpeg");
        var e = Assert.Throws<VimException>(() => ImageFolderConverter.Convert(_files.PathOf("images"), [new CocoCategory(1, "a", null)], [], null))!;
        Assert.That(e.Message, Does.StartWith(bad + ": cannot read the image's size"));
    }

    /// <summary>Cityscapes' labelId → trainId table, written out here from cityscapesscripts' labels.py: (label id, train id).</summary>
    private static readonly (byte Id, byte TrainId)[] CityscapesTable =
    [
        (0, 255), (1, 255), (2, 255), (3, 255), (4, 255), (5, 255), (6, 255), (7, 0), (8, 1), (9, 255), (10, 255), (11, 2), (12, 3), (13, 4),
        (14, 255), (15, 255), (16, 255), (17, 5), (18, 255), (19, 6), (20, 7), (21, 8), (22, 9), (23, 10), (24, 11), (25, 12), (26, 13),
        (27, 14), (28, 15), (29, 255), (30, 255), (31, 16), (32, 17), (33, 18),
        (255, 255), // license plate, id −1, as an 8-bit PNG would hold it
    ];

    /// <summary>
    /// Every label id in a hand-made labelIds PNG maps to its train id, the PNG is written beside its source, and the
    /// converted tree reads through the layout keys with the class list written beside it.
    /// </summary>
    [Test]
    public void CityscapesLabelIdsBecomeTrainIdsThatTheLayoutReads()
    {
        const int width = 7, height = 5; // 35 pixels: one per table row
        byte IdAt(int y, int x) => CityscapesTable[y * width + x].Id;
        foreach (var (split, city, frame) in new[] { ("train", "aachen", "000000_000019"), ("val", "frankfurt", "000000_000294") })
        {
            _files.WriteGray($"cityscapes/gtFine/{split}/{city}/{city}_{frame}_gtFine_labelIds.png", height, width, IdAt);
            _files.WriteGray($"cityscapes/gtFine/{split}/{city}/{city}_{frame}_gtFine_instanceIds.png", height, width, (y, x) => 77);
            _files.WriteRgb($"cityscapes/leftImg8bit/{split}/{city}/{city}_{frame}_leftImg8bit.png", height, width, (y, x) => ((byte)x, (byte)y, 0));
        }
        var root = _files.PathOf("cityscapes");
        Assert.That(VimCli.Run(["data", "convert", "cityscapes", "--root", root, "--threads", "2"], new StringWriter()), Is.EqualTo(0));

        var converted = Path.Combine(root, "gtFine", "train", "aachen", "aachen_000000_000019_gtFine_labelTrainIds.png");
        var (labels, h, w) = ImageDecoder.ReadLabelMap(converted);
        Assert.That((h, w), Is.EqualTo((height, width)));
        Assert.That(labels, Is.EqualTo(CityscapesTable.Select(row => (ushort)row.TrainId).ToArray()));
        Assert.That(File.ReadAllLines(Path.Combine(root, "class_names.txt")), Has.Length.EqualTo(19).And.Contains("traffic light"));

        var layout = DatasetLayout.Of(new DataConfig
        {
            Type = "ade20k", Root = root, ImgDir = "leftImg8bit/{split}", SegMapDir = "gtFine/{split}",
            ImgSuffix = "_leftImg8bit.png", SegMapSuffix = CityscapesConverter.TrainIdSuffix,
        });
        var names = SegmentationFolderDataset.ReadClassNames(Path.Combine(root, "class_names.txt"));
        var val = SegmentationFolderDataset.InLayout(layout, "val", names, reduceZeroLabel: false);
        Assert.That(val.Count, Is.EqualTo(1));
        Assert.That(val.Load(0).LabelMap, Is.EqualTo(CityscapesTable.Select(row => (ushort)row.TrainId).ToArray()));
    }

    [Test]
    public void LabelIdPngsThatAreNotCityscapesAreRefusedByName()
    {
        var colour = _files.WriteRgb("cs/gtFine/train/a/a_1_gtFine_labelIds.png", 2, 2, (y, x) => (7, 7, 7));
        var e = Assert.Throws<VimException>(() => CityscapesConverter.Convert(_files.PathOf("cs"), _files.PathOf("cs"), -1, null))!;
        Assert.That(e.Message, Does.StartWith(colour + ": PNG of bit depth 8 and colour type 2; expected an 8-bit single-channel"));

        File.Delete(colour);
        var unknown = _files.WriteGray("cs/gtFine/train/a/a_1_gtFine_labelIds.png", 2, 2, (y, x) => (byte)(y == 1 && x == 0 ? 40 : 7));
        e = Assert.Throws<VimException>(() => CityscapesConverter.Convert(_files.PathOf("cs"), _files.PathOf("cs"), 1, null))!;
        Assert.That(e.Message, Does.StartWith(unknown + ": pixel (0, 1) holds label id 40"));
        Assert.That(File.Exists(unknown.Replace("_labelIds", "_labelTrainIds")), Is.False);
    }
}
