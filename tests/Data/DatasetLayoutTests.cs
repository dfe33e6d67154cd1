using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Demo;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Segmentation;
using Vim.Tools;

namespace Vim.Tests.Data;

/// <summary>
/// data.ann_file, img_dir, seg_map_dir, img_suffix and seg_map_suffix (MMDetection's ann_file and data_prefix, MMSegmentation's
/// data_prefix and suffixes): the default layouts unchanged, other layouts read where they are by training, evaluation and
/// `vim data check`/`stats`, and bad values refused naming the key or the option.
/// </summary>
public class DatasetLayoutTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    [Test]
    public void TheDefaultsAreCocosAndAde20ksOwnLayouts()
    {
        var root = Path.Combine("data", "coco");
        var coco = DatasetLayout.Coco(root);
        Assert.That(coco.AnnotationFile("val2017"), Is.EqualTo(Path.Combine(root, "annotations", "instances_val2017.json")));
        Assert.That(coco.ImageDir("val2017"), Is.EqualTo(Path.Combine(root, "val2017")));
        Assert.That(coco.Describe(), Is.EqualTo("annotations/instances_<split>.json and the image folder <split>/"));
        var ade = DatasetLayout.Ade20k("ADEChallengeData2016");
        Assert.That((ade.ImageDir("training"), ade.LabelDir("training"), ade.ImageSuffix, ade.LabelSuffix), Is.EqualTo((
            Path.Combine("ADEChallengeData2016", "images", "training"), Path.Combine("ADEChallengeData2016", "annotations", "training"), ".jpg", ".png")));
        Assert.That(ade.Describe(), Is.EqualTo("images/<split>/*.jpg and annotations/<split>/*.png"));
    }

    [Test]
    public void PatternsPutTheSplitsNameWhereTheySay()
    {
        var coco = DatasetLayout.Of(new DataConfig { Type = "coco", Root = "r", AnnFile = "labels/{split}/objects.json", ImgDir = "pictures/{split}_{split}" });
        Assert.That(coco.AnnotationFile("a"), Is.EqualTo(Path.Combine("r", "labels/a/objects.json")));
        Assert.That(coco.ImageDir("a"), Is.EqualTo(Path.Combine("r", "pictures/a_a")));
        var absolute = Path.Combine(_files.Root, "elsewhere", "{split}.json");
        Assert.That(DatasetLayout.Of(new DataConfig { Type = "coco", Root = "r", AnnFile = absolute }).AnnotationFile("b"),
            Is.EqualTo(Path.Combine(_files.Root, "elsewhere", "b.json")), "an absolute pattern ignores data.root");
        var city = DatasetLayout.Of(new DataConfig
        {
            Type = "ade20k", Root = "cs", ImgDir = "leftImg8bit/{split}", SegMapDir = "gtFine/{split}", ImgSuffix = "_leftImg8bit.png",
            SegMapSuffix = "_gtFine_labelTrainIds.png",
        });
        Assert.That((city.ImageDir("val"), city.LabelDir("val")), Is.EqualTo((Path.Combine("cs", "leftImg8bit/val"), Path.Combine("cs", "gtFine/val"))));
        Assert.That(city.Describe(), Is.EqualTo("leftImg8bit/<split>/*_leftImg8bit.png and gtFine/<split>/*_gtFine_labelTrainIds.png"));
    }

    [TestCase("coco", "ann_file", "annotations/train.json", "data.ann_file 'annotations/train.json' does not contain {split}: every split would read the same files")]
    [TestCase("coco", "ann_file", "annotations/{year}_{split}.json", "data.ann_file 'annotations/{year}_{split}.json': the only placeholder is {split}")]
    [TestCase("coco", "img_dir", " ", "data.img_dir is empty")]
    [TestCase("coco", "seg_map_dir", "gt/{split}", "data.seg_map_dir applies to segmentation label maps (data.type ade20k)")]
    [TestCase("coco", "img_suffix", ".png", "data.img_suffix applies to segmentation label maps (data.type ade20k)")]
    [TestCase("ade20k", "ann_file", "a/{split}.json", "data.ann_file applies to COCO annotation files (data.type coco)")]
    [TestCase("ade20k", "seg_map_dir", "gtFine", "data.seg_map_dir 'gtFine' does not contain {split}")]
    [TestCase("ade20k", "seg_map_suffix", "labels/x.png", "data.seg_map_suffix 'labels/x.png': expected how the file names end")]
    [TestCase("ade20k", "img_suffix", "", "data.img_suffix '': expected how the file names end")]
    public void BadLayoutsAreRefusedNamingTheKey(string type, string key, string value, string expected)
    {
        // Through the config loader, as a --set override: the keys are in the schema.
        var config = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, type == "coco"
            ? "configs/det/cascade_mask_rcnn_vim_tiny_demo_coco.yaml" : "configs/seg/upernet_vim_tiny_demo_ade.yaml"), [$"data.{key}='{value}'"]).Config;
        var e = Assert.Throws<VimException>(() => DatasetLayout.Of(config.Data))!;
        Assert.That(e.Message, Does.StartWith(expected));
    }

    [Test]
    public void AnUnknownTypeIsRefused()
    {
        var e = Assert.Throws<VimException>(() => DatasetLayout.Of(new DataConfig { Type = "voc", Root = "r" }))!;
        Assert.That(e.Message, Does.StartWith("data.type 'voc' is unknown"));
    }

    /// <summary>A COCO-format dataset with its files elsewhere (MMDetection's ann_file + data_prefix.img) trains and evaluates
    /// from them: the same images and annotations as the same files in COCO's layout.</summary>
    [Test]
    public void DetectionReadsACustomCocoLayout()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 6, valImages: 3, "train");
        var standard = new DetectionData(config);
        var (trainCount, valCount, trainAnnotations) = (standard.TrainSet.Count, standard.ValSet.Count, standard.ValSet.Source.Annotations.Count);
        var firstImage = standard.ValSet.Load(0).Image;

        var root = config.Data.Root;
        foreach (var split in new[] { "train", "val" })
        {
            Directory.CreateDirectory(Path.Combine(root, "labels"));
            File.Move(Path.Combine(root, "annotations", $"instances_{split}.json"), Path.Combine(root, "labels", $"{split}.json"));
            Directory.CreateDirectory(Path.Combine(root, "pictures"));
            Directory.Move(Path.Combine(root, split), Path.Combine(root, "pictures", split));
        }
        Assert.Throws<VimException>(() => _ = new DetectionData(config), "the default layout no longer finds them");
        config.Data.AnnFile = "labels/{split}.json";
        config.Data.ImgDir = "pictures/{split}";
        var moved = new DetectionData(config);
        Assert.That((moved.TrainSet.Count, moved.ValSet.Count, moved.ValSet.Source.Annotations.Count), Is.EqualTo((trainCount, valCount, trainAnnotations)));
        Assert.That(moved.ValSet.Load(0).Image, Is.EqualTo(firstImage));
        Assert.That(moved.CategorySource, Is.EqualTo(Path.Combine(root, "labels/train.json")));

        // A missing training split names the layout it looked for.
        config.Data.TrainSplits = ["train", "extra"];
        var e = Assert.Throws<VimException>(() => _ = new DetectionData(config))!;
        Assert.That(e.Message, Does.Contain("split 'extra' not found").And.Contain("labels/<split>.json and the image folder pictures/<split>/"));
    }

    /// <summary>
    /// A Cityscapes-shaped segmentation dataset (city folders below leftImg8bit/{split} and gtFine/{split}, files told apart
    /// by their suffixes, other gtFine files beside the label maps) pairs every image with its label map and reads the same
    /// pixels as the same files in ADE20k's layout.
    /// </summary>
    [Test]
    public void SegmentationReadsACityscapesShapedLayout()
    {
        var config = SegmentationTaskTests.ConfigAt(_files.Root);
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = config.Data.Root, TrainImages = 6, ValImages = 3, Width = 48, Height = 48, Seed = 4 });
        var standard = new SegmentationData(config);
        var expected = Enumerable.Range(0, standard.ValSet.Count).Select(i => standard.ValSet.Load(i).LabelMap!).ToList();
        Assert.That(standard.TrainSet.Count, Is.EqualTo(6));

        var root = config.Data.Root;
        foreach (var split in new[] { "training", "validation" })
        {
            var images = Directory.GetFiles(Path.Combine(root, "images", split)).Order(StringComparer.Ordinal).ToArray();
            for (int i = 0; i < images.Length; i++)
            {
                var stem = Path.GetFileNameWithoutExtension(images[i]);
                // Two cities, so pairing goes by the path below the folders; ordinal order keeps the ADE order within a city.
                var city = i % 2 == 0 ? "aachen" : "bremen";
                var imageTarget = Path.Combine(root, "leftImg8bit", split, city, $"{stem}_leftImg8bit.jpg");
                var labelTarget = Path.Combine(root, "gtFine", split, city, $"{stem}_gtFine_labelTrainIds.png");
                Directory.CreateDirectory(Path.GetDirectoryName(imageTarget)!);
                Directory.CreateDirectory(Path.GetDirectoryName(labelTarget)!);
                File.Move(images[i], imageTarget);
                File.Copy(Path.Combine(root, "annotations", split, stem + ".png"), labelTarget);
                // Cityscapes' other ground-truth files lie beside: the suffix leaves them out.
                File.Move(Path.Combine(root, "annotations", split, stem + ".png"), Path.Combine(root, "gtFine", split, city, $"{stem}_gtFine_color.png"));
            }
        }
        config.Data.ImgDir = "leftImg8bit/{split}";
        config.Data.SegMapDir = "gtFine/{split}";
        config.Data.ImgSuffix = "_leftImg8bit.jpg";
        config.Data.SegMapSuffix = "_gtFine_labelTrainIds.png";
        var moved = new SegmentationData(config);
        Assert.That(moved.TrainSet.Count, Is.EqualTo(6));
        var valPaths = moved.ValSet.ImagePaths;
        Assert.That(valPaths, Has.Count.EqualTo(expected.Count));
        for (int i = 0; i < valPaths.Count; i++)
        {
            var sample = moved.ValSet.Load(i);
            // The ADE index of this image: its stem's rank among the validation stems.
            var stem = Path.GetFileName(valPaths[i])[..^"_leftImg8bit.jpg".Length];
            int adeIndex = standard.ValSet.ImagePaths.Select(Path.GetFileNameWithoutExtension).ToList().IndexOf(stem);
            Assert.That(sample.LabelMap, Is.EqualTo(expected[adeIndex]), valPaths[i]);
        }
    }

    /// <summary>`vim data check` and `vim data stats` take the layout as options, and refuse one that does not fit the format by the option's name.</summary>
    [Test]
    public void TheDataToolsTakeTheLayoutAsOptions()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 4, valImages: 2, "train");
        var root = config.Data.Root;
        Directory.CreateDirectory(Path.Combine(root, "labels"));
        File.Move(Path.Combine(root, "annotations", "instances_val.json"), Path.Combine(root, "labels", "val.json"));
        Directory.Move(Path.Combine(root, "val"), Path.Combine(root, "val_images"));

        var output = new StringWriter();
        var previous = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.That(VimCli.Run(["data", "check", "--kind", "coco", "--root", root, "--split", "val", "--ann-file", "labels/{split}.json",
                "--img-dir", "{split}_images"], new StringWriter()), Is.EqualTo(0));
            var outDir = _files.PathOf("stats");
            Assert.That(VimCli.Run(["data", "stats", "--kind", "coco", "--root", root, "--split", "val", "--ann-file", "labels/{split}.json",
                "--img-dir", "{split}_images", "--out", outDir], new StringWriter()), Is.EqualTo(0));
            Assert.That(File.Exists(Path.Combine(outDir, "stats.json")));
        }
        finally
        {
            Console.SetOut(previous);
        }
        Assert.That(output.ToString(), Does.Contain("COCO val: 2 images"));

        var error = new StringWriter();
        Assert.That(VimCli.Run(["data", "check", "--kind", "coco", "--root", root, "--split", "val", "--seg-map-dir", "gt/{split}"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--seg-map-dir applies to segmentation label maps"));
        error = new StringWriter();
        Assert.That(VimCli.Run(["data", "check", "--kind", "coco", "--root", root, "--split", "val", "--ann-file", "labels/val.json"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--ann-file 'labels/val.json' does not contain {split}"));
    }
}
