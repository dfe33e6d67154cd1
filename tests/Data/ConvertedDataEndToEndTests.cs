using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Coco;
using Vim.Tools;

namespace Vim.Tests.Data;

/// <summary>
/// The README's paths from other layouts, on the command line end to end: a tiny VOCdevkit through `vim data convert voc`
/// trains the demo Faster R-CNN (the Mask R-CNN demo config with mask_on false, the README's VOC overrides) for two
/// iterations and `vim test` evaluates it; an image folder through `vim data convert images` is predicted by
/// `vim test --format-only --split S`, whose results.json is the one `vim test` writes for the same images when labelled.
/// </summary>
public class ConvertedDataEndToEndTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    private static readonly string ConfigPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "mask_rcnn_vim_tiny_demo_coco.yaml");

    private const int Width = 64, Height = 48;

    /// <summary>One VOC image: a box of a colour per class on a grey background, and its XML (VOC's 1-based corners).</summary>
    private void WriteVocImage(string year, string id, params (string Name, int XMin, int YMin, int XMax, int YMax, (byte, byte, byte) Colour)[] objects)
    {
        _files.WriteRgb($"VOCdevkit/VOC{year}/JPEGImages/{id}.jpg", Height, Width, (y, x) =>
            objects.FirstOrDefault(o => x + 1 >= o.XMin && x + 1 <= o.XMax && y + 1 >= o.YMin && y + 1 <= o.YMax) is { Name: not null } o ? o.Colour : ((byte)128, (byte)128, (byte)128));
        _files.WriteText($"VOCdevkit/VOC{year}/Annotations/{id}.xml",
            DataConvertTests.VocXml(Width, Height, objects.Select(o => (o.Name, 0, 0, o.XMin, o.YMin, o.XMax, o.YMax)).ToArray()));
    }

    private static readonly (byte, byte, byte) Red = (220, 30, 30), Blue = (30, 30, 220);

    /// <summary>VOC2007 trainval (3 images) and test (2), VOC2012 trainval (1): what the README's overrides name (0712_trainval, 07_test).</summary>
    private string WriteVocDevkit()
    {
        WriteVocImage("2007", "000001", ("dog", 5, 5, 30, 30, Red));
        WriteVocImage("2007", "000002", ("cat", 20, 10, 60, 40, Blue), ("dog", 2, 30, 15, 45, Red));
        WriteVocImage("2007", "000003", ("cat", 10, 8, 40, 44, Blue));
        WriteVocImage("2007", "000004", ("dog", 30, 4, 62, 30, Red));
        WriteVocImage("2007", "000005", ("cat", 4, 12, 36, 46, Blue), ("dog", 40, 2, 63, 20, Red));
        WriteVocImage("2012", "2008_000001", ("dog", 8, 8, 50, 40, Red));
        _files.WriteText("VOCdevkit/VOC2007/ImageSets/Main/trainval.txt", "000001\n000002\n000003\n");
        _files.WriteText("VOCdevkit/VOC2007/ImageSets/Main/test.txt", "000004\n000005\n");
        _files.WriteText("VOCdevkit/VOC2012/ImageSets/Main/trainval.txt", "2008_000001\n");
        return _files.PathOf("VOCdevkit");
    }

    /// <summary>The README's VOC overrides, plus tiny sizes and a two-iteration schedule for 2 CPU cores.</summary>
    private static string[] VocOverrides(string devkit) =>
    [
        $"data.root={devkit}", "data.ann_file=voc{split}.json", "data.img_dir=.", "data.train_split=0712_trainval", "data.val_split=07_test",
        "model.num_classes=20", "model.det_head.mask_on=false",
        "data.crop_size=[64,64]", "model.backbone.img_size=64", "data.num_workers=0", "data.batch_size=2",
        "schedule.max_iters=2", "schedule.warmup_iters=0", "schedule.milestones=[1]",
        "train.eval_interval=2", "train.checkpoint_interval=2", "train.log_interval=1",
        // An untrained head's class scores hover near 1/21, under the default 0.05: keep some detections to compare.
        "model.det_head.test_score_threshold=0.01",
    ];

    private static string Vim(params string[] args)
    {
        var console = new StringWriter();
        var errors = new StringWriter();
        int exit = CliProcess.WithConsole(console, () => VimCli.Run(args, errors));
        Assert.That(exit, Is.EqualTo(0), $"vim {string.Join(' ', args)}\n{errors}\n{console}");
        return console.ToString();
    }

    private static string[] WithSets(IEnumerable<string> overrides) => overrides.SelectMany(o => new[] { "--set", o }).ToArray();

    [Test]
    public void VocConvertedTrainsTestsAndPredictsAnImageFolderForTheServer()
    {
        var devkit = WriteVocDevkit();
        Vim("data", "convert", "voc", "--root", devkit);
        Assert.That(File.Exists(Path.Combine(devkit, "voc0712_trainval.json")) && File.Exists(Path.Combine(devkit, "voc07_test.json")), Is.True);

        var overrides = VocOverrides(devkit);
        var workDir = _files.PathOf("work");
        Vim(["train", ConfigPath, "--work-dir", workDir, .. WithSets(overrides)]);
        var checkpoint = Path.Combine(workDir, "iter_0000002.safetensors");
        Assert.That(File.Exists(checkpoint), Is.True);
        var log = File.ReadAllLines(Path.Combine(workDir, "log.jsonl")).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var evaluation = log.Single(r => r.TryGetProperty("bbox_mAP", out _));
        Assert.That(evaluation.TryGetProperty("segm_mAP", out _), Is.False, "Faster R-CNN: boxes only");
        Assert.That(log.Where(r => r.TryGetProperty("loss", out _)).SelectMany(r => r.EnumerateObject().Select(p => p.Name)), Has.None.EqualTo("loss_mask"));

        // vim test on the converted test split: its metrics are COCO's AP of the results it wrote, against the converted json.
        var tested = _files.PathOf("tested");
        Vim(["test", ConfigPath, "--checkpoint", checkpoint, "--out", tested, .. WithSets(overrides)]);
        var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(tested, "results.json"))).RootElement.EnumerateArray().ToList();
        Assert.That(results, Is.Not.Empty);
        var testImages = CocoDataset.Load(Path.Combine(devkit, "voc07_test.json")).Images;
        Assert.That(results.Select(r => r.GetProperty("image_id").GetInt64()).Distinct(), Is.SubsetOf(testImages.Select(i => i.Id)));
        Assert.That(results.Select(r => r.GetProperty("category_id").GetInt64()), Has.All.InRange(1L, 20L));
        Assert.That(results.All(r => !r.TryGetProperty("segmentation", out _)), Is.True, "no masks without a mask head");
        var evaluated = _files.PathOf("evaluated.json");
        Vim("eval", "coco", "--gt", Path.Combine(devkit, "voc07_test.json"), "--results", Path.Combine(tested, "results.json"), "--iou-type", "bbox", "--json-out", evaluated);
        double ap = JsonDocument.Parse(File.ReadAllText(evaluated)).RootElement.GetProperty("stats")[0].GetDouble();
        double testedAp = JsonDocument.Parse(File.ReadAllText(Path.Combine(tested, "metrics.json"))).RootElement.GetProperty("bbox_mAP").GetDouble();
        Assert.That(testedAp, Is.EqualTo(100 * ap).Within(1e-9), "metrics.json holds AP in percent");

        // The test split's images as an unlabelled folder, in the order VOC's test list gives them, so its image ids are the
        // converted test json's: format-only's results are then vim test's results for the same images, byte for byte.
        var folder = _files.PathOf("VOCdevkit", "mysplit");
        Directory.CreateDirectory(folder);
        foreach (var image in testImages)
            File.Copy(Path.Combine(devkit, image.FileName!), Path.Combine(folder, Path.GetFileName(image.FileName!)));
        var imageInfo = Path.Combine(devkit, "annotations", "image_info_mysplit.json");
        Vim("data", "convert", "images", "--images", folder, "--out", imageInfo, "--from-coco", Path.Combine(devkit, "voc0712_trainval.json"));
        var submitted = _files.PathOf("submitted");
        var printed = Vim(["test", ConfigPath, "--checkpoint", checkpoint, "--format-only", "--split", "mysplit", "--out", submitted,
            .. WithSets([.. overrides, "data.img_dir='{split}'"])]);
        Assert.That(printed, Does.Contain("2/2 images"));
        Assert.That(File.ReadAllBytes(Path.Combine(submitted, "results.json")), Is.EqualTo(File.ReadAllBytes(Path.Combine(tested, "results.json"))));
        Assert.That(File.Exists(Path.Combine(submitted, "metrics.json")), Is.False, "nothing is evaluated");
    }
}
