using System.IO.Compression;
using System.Text.Json.Nodes;
using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Detection;
using Vim.Tests.Segmentation;
using Vim.Tools;
using Vim.Tools.Commands;

namespace Vim.Tests.Engine;

/// <summary>
/// `vim test --format-only` (mmdet/mmseg's format_only): predictions of a split without labels in the test server's
/// format, checked against what plain `vim test` writes for the same images when they are labelled.
/// </summary>
public class FormatOnlyTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-formatonly-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>The validation split again as an unlabelled COCO split: its json without "annotations", its images under &lt;folder&gt;/.</summary>
    internal static string WriteImageInfoSplit(string cocoRoot, string split, string folder, Action<JsonObject>? edit = null)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(cocoRoot, "annotations", "instances_val.json")))!.AsObject();
        Assert.That(json.Remove("annotations"), Is.True);
        edit?.Invoke(json);
        var file = Path.Combine(cocoRoot, "annotations", $"image_info_{split}.json");
        File.WriteAllText(file, json.ToJsonString());
        Directory.CreateDirectory(Path.Combine(cocoRoot, folder));
        foreach (var image in Directory.GetFiles(Path.Combine(cocoRoot, "val")))
            File.Copy(image, Path.Combine(cocoRoot, folder, Path.GetFileName(image)));
        return file;
    }

    private static string CheckpointOf<TBatch>(ITrainingTask<TBatch> task, ExperimentConfig config, string workDir, bool train)
    {
        using var stop = new CancellationTokenSource();
        if (!train) stop.Cancel();
        var result = new Trainer<TBatch>(task, config, workDir, "cfg", TextWriter.Null).Run(null, stop.Token);
        return result.LastCheckpoint!;
    }

    /// <summary>
    /// The image-info json (val minus its annotations; images copied to test/, as COCO keeps test-dev's in test2017/)
    /// gives, detection for detection and byte for byte, the results.json `vim test` writes on the annotated split with
    /// the same checkpoint; the zip holds that file under the server's name; nothing is evaluated.
    /// </summary>
    [Test]
    public void DetectionResultsEqualThoseOfVimTestOnTheAnnotatedSplit()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3 });
        var config = DetectionTaskTests.ConfigAt(_root);
        WriteImageInfoSplit(Path.Combine(_root, "coco"), "test-dev", "test");
        using var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector);
        var checkpoint = CheckpointOf(task, config, Path.Combine(_root, "work"), train: false);

        var tested = Path.Combine(_root, "tested");
        DetectionTester.Run(task, checkpoint, tested, ema: false);
        var progress = new StringWriter();
        var submitted = Path.Combine(_root, "submitted");
        var (images, detections, archive) = DetectionTester.FormatOnly(task, checkpoint, "test-dev", submitted, ema: false, overlays: 2, overlayThreshold: 0.3, progress);

        var expected = File.ReadAllBytes(Path.Combine(tested, "results.json"));
        Assert.That(JsonNode.Parse(expected)!.AsArray(), Has.Count.GreaterThan(0), "the untrained head scores above 0.05: there is something to compare");
        Assert.That(File.ReadAllBytes(Path.Combine(submitted, "results.json")), Is.EqualTo(expected));
        Assert.That(images, Is.EqualTo(3));
        Assert.That(detections, Is.EqualTo(JsonNode.Parse(expected)!.AsArray().Count));
        Assert.That(archive, Is.EqualTo(Path.Combine(submitted, "detections_test-dev_vimdense_results.zip")));
        using (var zip = ZipFile.OpenRead(archive))
        {
            Assert.That(zip.Entries.Select(e => e.FullName), Is.EqualTo(new[] { "detections_test-dev_vimdense_results.json" }));
            using var entry = zip.Entries[0].Open();
            using var copy = new MemoryStream();
            entry.CopyTo(copy);
            Assert.That(copy.ToArray(), Is.EqualTo(expected));
        }
        Assert.That(File.Exists(Path.Combine(submitted, "metrics.json")), Is.False, "nothing is evaluated");
        // The first two images the json lists, drawn whether or not they hold objects (there is no ground truth to ask).
        var listed = task.ValSet.Images.Take(2).Select(i => Path.ChangeExtension(i.FileName!, ".png"));
        Assert.That(Directory.GetFiles(Path.Combine(submitted, "overlays")).Select(Path.GetFileName), Is.EquivalentTo(listed));
        Assert.That(progress.ToString(), Does.Contain("3/3 images"));

        // A machine with the test images, the config and the checkpoint alone: no training or validation images, no
        // validation annotations. The classes come from the training file, and without it from the image-info file.
        var coco = Path.Combine(_root, "coco");
        Directory.Delete(Path.Combine(coco, "train"), recursive: true);
        Directory.Delete(Path.Combine(coco, "val"), recursive: true);
        File.Delete(Path.Combine(coco, "annotations", "instances_val.json"));
        Assert.Throws<VimException>(() => new Vim.Detection.DetectionData(config), "the evaluation data is gone");
        foreach (bool withTrainingFile in new[] { true, false })
        {
            if (!withTrainingFile) File.Delete(Path.Combine(coco, "annotations", "instances_train.json"));
            var data = Vim.Detection.DetectionData.ForUnlabelledSplit(config, "test-dev");
            Assert.That(data.CategorySource, Does.EndWith(withTrainingFile ? "instances_train.json" : "image_info_test-dev.json"));
            Assert.That(() => data.ValSet, Throws.InvalidOperationException.With.Message.Contains("test-dev"));
            using var alone = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector, weightsFromCheckpoint: true, data: data);
            var again = Path.Combine(_root, $"submitted-alone-{withTrainingFile}");
            DetectionTester.FormatOnly(alone, checkpoint, "test-dev", again, ema: false, overlays: 0, overlayThreshold: 0.3, TextWriter.Null);
            Assert.That(File.ReadAllBytes(Path.Combine(again, "results.json")), Is.EqualTo(expected), $"training annotations present: {withTrainingFile}");
        }
    }

    /// <summary>
    /// `vim test` draws its overlays from the detections it has just evaluated (RLE masks decoded at the image size)
    /// instead of predicting the images again: pixel for pixel the drawing of a fresh prediction.
    /// </summary>
    [Test]
    public void OverlaysDrawnFromTheResultsEqualThoseOfAFreshPrediction()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3 });
        var config = DetectionTaskTests.ConfigAt(_root);
        using var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector);
        var detections = task.PredictValidation();
        Assert.That(detections.Count(d => d.Score >= 0.05), Is.GreaterThan(0), "the untrained head scores above the threshold: there is something to draw");
        var predicted = DetectionTester.WriteOverlays(task, Path.Combine(_root, "predicted"), 3, scoreThreshold: 0.05);
        var fromResults = DetectionTester.WriteOverlays(task, Path.Combine(_root, "results"), 3, scoreThreshold: 0.05, detections);
        Assert.That(fromResults.Select(Path.GetFileName), Is.EqualTo(predicted.Select(Path.GetFileName)).And.Not.Empty);
        foreach (var (a, b) in predicted.Zip(fromResults))
        {
            using var expected = Cv2.ImRead(a);
            using var actual = Cv2.ImRead(b);
            using var difference = new Mat();
            Cv2.Absdiff(expected, actual, difference);
            Assert.That(Cv2.CountNonZero(difference.Reshape(1)), Is.EqualTo(0), Path.GetFileName(a));
        }
    }

    /// <summary>An image-info json whose categories differ from the training file's is refused, naming both files, before any output.</summary>
    [Test]
    public void DetectionRefusesAnImageInfoFileWithOtherCategories()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3 });
        var config = DetectionTaskTests.ConfigAt(_root);
        var file = WriteImageInfoSplit(Path.Combine(_root, "coco"), "test-dev", "test", json => json["categories"]!.AsArray()[0]!["name"] = "hexagon");
        var data = new Vim.Detection.DetectionData(config);
        var error = Assert.Throws<VimException>(() => data.UnlabelledSplit("test-dev"))!;
        Assert.That(error.Message, Does.Contain(file).And.Contain(Path.Combine(_root, "coco", "annotations", "instances_train.json"))
            .And.Contain("'hexagon'"));

        var missing = Assert.Throws<VimException>(() => data.UnlabelledSplit("test-dev2099"))!;
        Assert.That(missing.Message, Does.StartWith("--split test-dev2099").And.Contain("image_info_test-dev2099.json").And.Contain(Path.Combine(_root, "coco", "test2099")));
    }

    /// <summary>
    /// Each submission PNG, read back by OpenCV, is 8-bit and equals `vim test`'s predicted class-index PNG of the same
    /// image plus 1 with reduce_zero_label (mmseg's IoUMetric format_only), unchanged without it; submission.zip holds them.
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    public void SegmentationPngsAreVimTestsPredictionsInTheServersNumbering(bool reduceZeroLabel)
    {
        var ade = Path.Combine(_root, "ade");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = ade, TrainImages = 8, ValImages = 4, Width = 64, Height = 64, Seed = 5 });
        var config = SegmentationTaskTests.ConfigAt(_root);
        config.Data.ReduceZeroLabel = reduceZeroLabel;
        int classes = DemoDatasetGenerator.ClassNames.Count;
        if (!reduceZeroLabel)
        {
            // The background value 0 becomes a class of its own.
            var names = Path.Combine(_root, "six_classes.txt");
            File.WriteAllLines(names, DemoDatasetGenerator.ClassNames.Prepend("background"));
            config.Data.ClassNames = names;
            config.Model.NumClasses = ++classes;
        }
        Directory.CreateDirectory(Path.Combine(ade, "images", "testing"));
        foreach (var image in Directory.GetFiles(Path.Combine(ade, "images", "validation")))
            File.Copy(image, Path.Combine(ade, "images", "testing", Path.GetFileName(image)));
        using var task = new SegmentationTask(config, TextWriter.Null, () => SegmentationTaskTests.TinyModel(classes));
        var checkpoint = CheckpointOf(task, config, Path.Combine(_root, "work"), train: true);

        var tested = Path.Combine(_root, "tested");
        SegmentationTester.Run(task, checkpoint, tested, overlays: 0, ema: false);
        var submitted = Path.Combine(_root, "submitted");
        int count = SegmentationTester.FormatOnly(task, checkpoint, "testing", submitted, overlays: 1, ema: false, TextWriter.Null);

        Assert.That(count, Is.EqualTo(4));
        var distinct = new HashSet<byte>();
        foreach (var image in Directory.GetFiles(Path.Combine(ade, "images", "validation")))
        {
            var stem = Path.GetFileNameWithoutExtension(image);
            using var predicted = Cv2.ImRead(Path.Combine(tested, "predictions", "pred", stem + ".png"), ImreadModes.Unchanged);
            using var submission = Cv2.ImRead(Path.Combine(submitted, "submission", stem + ".png"), ImreadModes.Unchanged);
            Assert.That(submission.Type(), Is.EqualTo(MatType.CV_8UC1), stem);
            Assert.That(predicted.Type(), Is.EqualTo(MatType.CV_8UC1), stem);
            Assert.That(submission.Size(), Is.EqualTo(predicted.Size()), stem);
            predicted.GetArray(out byte[] classIndices);
            submission.GetArray(out byte[] served);
            Assert.That(served, Is.EqualTo(classIndices.Select(v => (byte)(v + (reduceZeroLabel ? 1 : 0))).ToArray()), stem);
            distinct.UnionWith(classIndices);
        }
        Assert.That(distinct, Has.Count.GreaterThan(1), "the trained model predicts several classes: an offset could not hide in a constant");
        using (var zip = ZipFile.OpenRead(Path.Combine(submitted, "submission.zip")))
            Assert.That(zip.Entries.Select(e => e.FullName), Is.EquivalentTo(Directory.GetFiles(Path.Combine(ade, "images", "testing")).Select(f => Path.GetFileNameWithoutExtension(f) + ".png")));
        Assert.That(Directory.GetFiles(Path.Combine(submitted, "overlays")), Has.Length.EqualTo(1));
        Assert.That(File.Exists(Path.Combine(submitted, "metrics.json")), Is.False, "nothing is evaluated");

        // The test images and the class list alone: the training and validation splits are not needed.
        foreach (var folder in new[] { "images/training", "images/validation", "annotations" })
            Directory.Delete(Path.Combine(ade, folder), recursive: true);
        var data = SegmentationData.ForUnlabelledSplit(config, "testing");
        Assert.That(() => data.TrainSet, Throws.InvalidOperationException.With.Message.Contains("testing"));
        using var alone = new SegmentationTask(config, TextWriter.Null, () => SegmentationTaskTests.TinyModel(classes), weightsFromCheckpoint: true, data: data);
        var again = Path.Combine(_root, "submitted-alone");
        Assert.That(SegmentationTester.FormatOnly(alone, checkpoint, "testing", again, overlays: 0, ema: false, TextWriter.Null), Is.EqualTo(4));
        foreach (var png in Directory.GetFiles(Path.Combine(submitted, "submission")))
            Assert.That(File.ReadAllBytes(Path.Combine(again, "submission", Path.GetFileName(png))), Is.EqualTo(File.ReadAllBytes(png)), png);
    }

    /// <summary>A split folder that is missing, or holds no image, is refused naming it, before the output folder exists.</summary>
    [Test]
    public void SegmentationRefusesASplitWithoutImages()
    {
        var ade = Path.Combine(_root, "ade");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = ade, TrainImages = 8, ValImages = 4, Width = 64, Height = 64, Seed = 5 });
        var config = SegmentationTaskTests.ConfigAt(_root);
        using var task = new SegmentationTask(config, TextWriter.Null, SegmentationTaskTests.TinyModel);
        var checkpoint = CheckpointOf(task, config, Path.Combine(_root, "work"), train: false);
        var outDir = Path.Combine(_root, "submitted");

        var missing = Assert.Throws<VimException>(() => SegmentationTester.FormatOnly(task, checkpoint, "testing", outDir, 0, false, TextWriter.Null))!;
        Assert.That(missing.Message, Does.Contain(Path.Combine(ade, "images", "testing")).And.Contain("not found"));
        var empty = Path.Combine(ade, "images", "empty");
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, "notes.txt"), "no images here");
        var none = Assert.Throws<VimException>(() => SegmentationTester.FormatOnly(task, checkpoint, "empty", outDir, 0, false, TextWriter.Null))!;
        Assert.That(none.Message, Does.Contain(empty).And.Contain("no images"));
        Assert.That(Directory.Exists(outDir), Is.False);
    }

    /// <summary>
    /// The command line: --format-only with --error-analysis (which needs ground truth), and --split without --format-only,
    /// are refused by name before anything is read; --format-only with --overlays runs the demo config end to end.
    /// </summary>
    [Test]
    public void TheCommandRefusesMeaninglessCombinationsAndWritesTheSubmission()
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        var absent = Path.Combine(_root, "absent.safetensors");
        var errors = new StringWriter();
        Assert.That(VimCli.Run(["test", configPath, "--checkpoint", absent, "--format-only", "--error-analysis"], errors), Is.EqualTo(1));
        Assert.That(errors.ToString(), Does.Contain("error: --error-analysis").And.Contain("--format-only"));
        errors.GetStringBuilder().Clear();
        Assert.That(VimCli.Run(["test", configPath, "--checkpoint", absent, "--split", "test-dev2017"], errors), Is.EqualTo(1));
        Assert.That(errors.ToString(), Does.Contain("error: --split test-dev2017").And.Contain("--format-only"));
        errors.GetStringBuilder().Clear();
        Assert.That(VimCli.Run(["test", configPath, "--checkpoint", absent, "--score-thr", "1.5"], errors), Is.EqualTo(1));
        Assert.That(errors.ToString(), Does.Contain("error: --score-thr must be within [0, 1], got 1.5"));

        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3 });
        WriteImageInfoSplit(Path.Combine(_root, "coco"), "test-dev2017", "test2017");
        string[] overrides = [$"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[64,64]", "data.num_workers=0", "model.backbone.pretrained=null",
            "data.train_split=train", "data.val_split=val", "model.det_head.test_score_threshold=1.0"];
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        var trained = TrainCommand.Train(ExperimentConfig.Load(configPath, overrides).Config, Path.Combine(_root, "work"), null, SingleProcessCommunicator.Instance, stop.Token);
        var outDir = Path.Combine(_root, "submitted");
        var console = new StringWriter();
        var original = Console.Out;
        Console.SetOut(console);
        int exit;
        try
        {
            exit = VimCli.Run(["test", configPath, "--checkpoint", trained.LastCheckpoint!, "--format-only", "--out", outDir, "--overlays", "1",
                .. overrides.SelectMany(o => new[] { "--set", o })], errors);
        }
        finally
        {
            Console.SetOut(original);
        }
        Assert.That(exit, Is.EqualTo(0), errors.ToString());
        // A score threshold of 1 keeps no detection: the results are the empty COCO results array.
        Assert.That(JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!.AsArray(), Is.Empty);
        var zip = Path.Combine(outDir, "detections_test-dev2017_vimdense_results.zip");
        Assert.That(File.Exists(zip));
        Assert.That(Directory.GetFiles(Path.Combine(outDir, "overlays")), Has.Length.EqualTo(1));
        Assert.That(console.ToString(), Does.Contain($"upload {zip}").And.Contain("3/3 images"));
    }
}
