using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Detection.Structures;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// Test-time augmentation of the detector (model.det_test, `vim test --tta`): the defaults are today's path bit for bit,
/// each pass's boxes map back to the original image by hand-computed rules, and the merge is class-wise NMS with a cap.
/// </summary>
public class DetectionTestTimeAugmentationTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-dettta-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private void GenerateCoco() => DemoDatasetGenerator.Generate(new DemoOptions
    {
        Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3,
    });

    private static float[] Values(Tensor t) => t.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();

    private static float[] BoxValues(Boxes boxes) => Values(boxes.Tensor);

    /// <summary>
    /// With model.det_test at its defaults, the validation detections (COCO results) are exactly those of the detector's
    /// own predict path, CascadeMaskRcnn.Predict on each evaluation batch as evaluation ran it before test-time
    /// augmentation existed: same boxes, scores and categories, to the last bit.
    /// </summary>
    [Test]
    public void DefaultsGiveTheDetectorsPlainDetectionsBitForBit()
    {
        GenerateCoco();
        var config = DetectionTaskTests.ConfigAt(_root);
        Assert.That(DetectionTestTimeAugmentation.IsPlain(config.Model.DetTest), Is.True);
        using var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector);
        var detections = task.PredictValidation();

        task.Detector.eval();
        var expected = new List<(long Image, long Category, double Score, double[] Box)>();
        foreach (var batch in task.Data.EvaluationLoader(task.ValSet).Epoch(0))
        {
            using var scope = NewDisposeScope();
            using var owned = batch;
            var meta = batch.Metas[0];
            var found = task.Detector.Predict(batch.Images, [(meta.ContentHeight, meta.ContentWidth)], [(meta.OriginalHeight, meta.OriginalWidth)])[0];
            var boxes = found.Boxes.Tensor.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            var scores = found.Scores!.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            var classes = found.Classes!.contiguous().data<long>().ToArray();
            for (int i = 0; i < classes.Length; i++)
                expected.Add((meta.ImageId, task.Data.Categories.ToCategoryId((int)classes[i]), scores[i],
                    [boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2] - boxes[4 * i], boxes[4 * i + 3] - boxes[4 * i + 1]]));
        }
        Assert.That(expected, Is.Not.Empty, "the untrained head scores above 0.05: there is something to compare");
        Assert.That(detections.Select(d => (d.ImageId, d.CategoryId, d.Score)), Is.EqualTo(expected.Select(e => (e.Image, e.Category, e.Score))));
        for (int i = 0; i < expected.Count; i++)
            Assert.That(detections[i].Bbox, Is.EqualTo(expected[i].Box), $"detection {i}");
    }

    /// <summary>
    /// Flip: on a horizontally symmetric image (its right half the mirror of its left), the flipped pass's boxes mapped
    /// back must be the hand mirror (W − x2, y1, W − x1, y2) of what the plain detector predicts on the mirrored image,
    /// with the same scores and classes; the unflipped pass's boxes are the plain detections themselves.
    /// </summary>
    [Test]
    public void FlippedPassBoxesAreTheMirrorOfTheDetectionsOnTheMirroredImage()
    {
        using var scope = NewDisposeScope();
        using var model = DetectionTaskTests.TinyDetector();
        model.eval();
        const long height = 48, width = 64;
        var half = randn(new long[] { 1, 3, height, width / 2 }, generator: new TorchSharp.torch.Generator(11));
        var image = cat(new[] { half, half.flip(3) }, 3);
        var mirrored = image.flip(3);
        Assert.That(mirrored.eq(image).all().item<bool>(), Is.True, "the image is its own mirror");

        var passes = DetectionTestTimeAugmentation.Passes(model, [new DetectionView(image, height, width)], height, width,
            new DetectionTestConfig { Flip = true });
        Assert.That(passes.Select(p => p.Flipped), Is.EqualTo(new[] { false, true }));

        var plain = model.Predict(image, [(height, width)])[0];
        var onMirror = model.Predict(mirrored, [(height, width)])[0];
        Assert.That(onMirror.Count, Is.GreaterThan(0), "an untrained detector scores some boxes above 0.05");
        var raw = BoxValues(onMirror.Boxes);
        var handMirror = new float[raw.Length];
        for (int i = 0; i < raw.Length; i += 4)
            (handMirror[i], handMirror[i + 1], handMirror[i + 2], handMirror[i + 3]) = (width - raw[i + 2], raw[i + 1], width - raw[i], raw[i + 3]);
        var flipped = passes[1].Detections;
        Assert.That(BoxValues(flipped.Boxes), Is.EqualTo(handMirror).Within(1e-4));
        Assert.That(Values(flipped.Scores!), Is.EqualTo(Values(onMirror.Scores!)).Within(1e-6));
        Assert.That(flipped.Classes!.data<long>().ToArray(), Is.EqualTo(onMirror.Classes!.data<long>().ToArray()));
        Assert.That(BoxValues(passes[0].Detections.Boxes), Is.EqualTo(BoxValues(plain.Boxes)).Within(1e-4));
    }

    /// <summary>Hand-computed mappings from a view to the original image and back, flipped or not.</summary>
    [Test]
    public void BoxesOfAScaledViewMapBackByTheInverseScale()
    {
        using var scope = NewDisposeScope();
        var box = new Boxes(tensor(new float[,] { { 4, 6, 20, 30 } }));
        // A 32×32 view of a 64×64 image (scale 0.5): ×2 on both axes.
        Assert.That(BoxValues(DetectionTestTimeAugmentation.ToOriginal(box, false, 32, 32, 64, 64)), Is.EqualTo(new float[] { 8, 12, 40, 60 }));
        // Flipped within the view's width first: (32 − 20, 6, 32 − 4, 30) = (12, 6, 28, 30), then ×2.
        Assert.That(BoxValues(DetectionTestTimeAugmentation.ToOriginal(box, true, 32, 32, 64, 64)), Is.EqualTo(new float[] { 24, 12, 56, 60 }));
        // Per axis: a 40×25 view (h × w) of an 80×100 image: x × 4, y × 2.
        Assert.That(BoxValues(DetectionTestTimeAugmentation.ToOriginal(box, false, 40, 25, 80, 100)), Is.EqualTo(new float[] { 16, 12, 80, 60 }));
        foreach (bool flip in new[] { false, true })
        {
            var there = DetectionTestTimeAugmentation.ToOriginal(box, flip, 40, 25, 80, 100);
            Assert.That(BoxValues(DetectionTestTimeAugmentation.FromOriginal(there, flip, 40, 25, 80, 100)), Is.EqualTo(BoxValues(box)).Within(1e-5), $"round trip, flip {flip}");
        }

        // The detector's own boxes on a 32×32 view declared to come from a 64×64 image: twice the plain detections.
        using var model = DetectionTaskTests.TinyDetector();
        model.eval();
        var view = randn(new long[] { 1, 3, 32, 32 }, generator: new TorchSharp.torch.Generator(5));
        var passes = DetectionTestTimeAugmentation.Passes(model, [new DetectionView(view, 32, 32)], 64, 64, new DetectionTestConfig { Scales = [0.5] });
        var plain = model.Predict(view, [(32, 32)])[0];
        Assert.That(plain.Count, Is.GreaterThan(0));
        Assert.That(BoxValues(passes.Single().Detections.Boxes), Is.EqualTo(BoxValues(plain.Boxes).Select(v => 2 * v).ToArray()).Within(1e-4));

        // The test resize of each ratio of data.crop_size 64, applied to a 100×60 (w × h) image: long side into 32 and 96.
        var pipelines = DetectionTestTimeAugmentation.TestPipelines(64, new DetectionTestConfig { Scales = [0.5, 1.5] });
        var sizes = pipelines.Select(pipeline =>
        {
            var sample = new DataSample(0, "synthetic", new byte[60 * 100 * 3], 60, 100);
            pipeline.Apply(sample, new Random(0));
            return (sample.ContentHeight, sample.ContentWidth);
        });
        // 32 / 100 = 0.32: 60 × 0.32 = 19.2 → 19; 96 / 100 = 0.96: 60 × 0.96 = 57.6 → 58.
        Assert.That(sizes, Is.EqualTo(new[] { (19, 32), (58, 96) }));
    }

    /// <summary>
    /// The merge, by hand: pass A finds (10, 10, 50, 50) of class 0 at 0.9 and (60, 60, 90, 90) of class 2 at 0.3; pass B
    /// finds (12, 11, 51, 49) of class 0 at 0.8 (IoU with A's 1444 / 1638 = 0.88) and (10, 10, 50, 50) of class 1 at 0.7.
    /// At nms_iou 0.5 B's class-0 box is suppressed, the class-1 box is not (another class): rows 0, 3, 1 by score. At 0.9
    /// both class-0 boxes stay. max_per_img 2 keeps the best two.
    /// </summary>
    [Test]
    public void MergeSuppressesOverlapsOfOneClassOnlyAndKeepsTheBest()
    {
        using var scope = NewDisposeScope();
        static Instances Pass(float[,] boxes, long[] classes, float[] scores) =>
            new(100, 100, new Boxes(tensor(boxes)), tensor(classes), tensor(scores));
        var a = Pass(new float[,] { { 10, 10, 50, 50 }, { 60, 60, 90, 90 } }, [0, 2], [0.9f, 0.3f]);
        var b = Pass(new float[,] { { 12, 11, 51, 49 }, { 10, 10, 50, 50 } }, [0, 1], [0.8f, 0.7f]);

        var (merged, source) = DetectionTestTimeAugmentation.Merge([a, b], 100, 100, numClasses: 3, nmsIou: 0.5, maxPerImage: 100);
        Assert.That(source.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 3, 1 }));
        Assert.That(merged.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 1, 2 }));
        Assert.That(Values(merged.Scores!), Is.EqualTo(new[] { 0.9f, 0.7f, 0.3f }));
        Assert.That(BoxValues(merged.Boxes), Is.EqualTo(new float[] { 10, 10, 50, 50, 10, 10, 50, 50, 60, 60, 90, 90 }));

        var (loose, looseSource) = DetectionTestTimeAugmentation.Merge([a, b], 100, 100, numClasses: 3, nmsIou: 0.9, maxPerImage: 100);
        Assert.That(looseSource.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 2, 3, 1 }));
        Assert.That(loose.Count, Is.EqualTo(4));

        var (capped, cappedSource) = DetectionTestTimeAugmentation.Merge([a, b], 100, 100, numClasses: 3, nmsIou: 0.5, maxPerImage: 2);
        Assert.That(cappedSource.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 3 }));
        Assert.That(capped.Count, Is.EqualTo(2));
    }

    /// <summary>
    /// Masks: with flip, each merged box's mask is the mean of the mask head's probabilities at the box in the plain view
    /// and at its mirror in the mirrored view (mirrored back), pasted once: recomputed here from the detector's own heads.
    /// </summary>
    [Test]
    public void FlipAveragesTheMaskOfEachMergedBoxOverBothViews()
    {
        using var scope = NewDisposeScope();
        using var model = DetectionTaskTests.TinyDetector();
        model.eval();
        const long height = 64, width = 64;
        var image = randn(new long[] { 1, 3, height, width }, generator: new TorchSharp.torch.Generator(21));
        var test = new DetectionTestConfig { Flip = true };
        var found = DetectionTestTimeAugmentation.Predict(model, [new DetectionView(image, height, width)], height, width, test);
        Assert.That(found.Count, Is.GreaterThan(0));

        var (plainFeatures, _) = model.DetectBoxes(image, (height, width));
        var (mirrorFeatures, _) = model.DetectBoxes(image.flip(3), (height, width));
        var merged = new Instances(height, width, found.Boxes, found.Classes);
        var mirroredBoxes = new Instances(height, width, found.Boxes.FlipHorizontal(width), found.Classes);
        var mean = (model.MaskProbabilities(plainFeatures, merged) + model.MaskProbabilities(mirrorFeatures, mirroredBoxes).flip(2)) / 2;
        var expected = MaskPaster.Paste(mean, found.Boxes.Tensor, height, width, 0.5);
        Assert.That(found.Masks!.eq(expected).all().item<bool>(), Is.True, "every pixel of every pasted mask");
    }

    /// <summary>
    /// `vim test --tta` is an override of the config's task's flip key after the --set ones: the config vim test loads
    /// has the flip on, also over an explicit --set …flip=false (the flag wins, as vim train's --load-from over --set
    /// load_from), the other task's section is left alone (a segmentation config refuses model.det_test), and without
    /// the flag --set decides.
    /// </summary>
    [TestCase("det/cascade_mask_rcnn_vim_tiny_demo_coco.yaml", "model.det_test.flip")]
    [TestCase("seg/upernet_vim_tiny_demo_ade.yaml", "model.seg_test.flip")]
    public void TtaIsAFlipOverrideThatWinsOverSet(string configName, string key)
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", configName);
        static bool Flip(ExperimentConfig config) => config.Task == TaskKind.Detection ? config.Model.DetTest.Flip : config.Model.SegTest.Flip;
        ExperimentConfig Used(bool tta, params string[] settings) => ExperimentConfig.Load(configPath, TestCommand.Overrides(configPath, settings, tta)).Config;

        Assert.That(Flip(Used(tta: false)), Is.False, "the config's own value");
        Assert.That(TestCommand.Overrides(configPath, ["data.num_workers=0"], tta: true), Is.EqualTo(new[] { "data.num_workers=0", $"{key}=true" }));
        Assert.That(Flip(Used(tta: true)), Is.True);
        Assert.That(Flip(Used(tta: true, $"{key}=false")), Is.True, "the flag wins over --set");
        Assert.That(Flip(Used(tta: false, $"{key}=true")), Is.True, "--set alone");
        Assert.That(Flip(Used(tta: false, $"{key}=false")), Is.False);
    }

    /// <summary>
    /// `vim test --tta` evaluates as usual (metrics.json, results.json) with the flip pass on: its results are those of
    /// --set model.det_test.flip=true byte for byte and not those of a plain run. Bad model.det_test values and the
    /// section in a segmentation config are refused naming the key.
    /// </summary>
    [Test]
    public void VimTestTtaWritesMetricsAndResultsWithTheFlipPass()
    {
        GenerateCoco();
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        string[] overrides = [$"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[64,64]", "data.num_workers=0", "model.backbone.pretrained=null",
            "model.backbone.img_size=64", "data.batch_size=2"];
        using var stopAtOnce = new CancellationTokenSource();
        stopAtOnce.Cancel();
        var checkpoint = TrainCommand.Train(ExperimentConfig.Load(configPath, overrides).Config, Path.Combine(_root, "work"), null,
            SingleProcessCommunicator.Instance, stopAtOnce.Token).LastCheckpoint!;

        string Test(string name, params string[] more)
        {
            var dir = Path.Combine(_root, name);
            var errors = new StringWriter();
            var console = Console.Out;
            Console.SetOut(TextWriter.Null);
            int exit;
            try
            {
                exit = VimCli.Run(["test", configPath, "--checkpoint", checkpoint, "--out", dir, "--overlays", "1",
                    .. overrides.Concat(more.Where(m => m.Contains('='))).SelectMany(o => new[] { "--set", o }), .. more.Where(m => !m.Contains('='))], errors);
            }
            finally
            {
                Console.SetOut(console);
            }
            Assert.That(exit, Is.EqualTo(0), errors.ToString());
            Assert.That(File.Exists(Path.Combine(dir, "metrics.json")), Is.True, name);
            return File.ReadAllText(Path.Combine(dir, "results.json"));
        }
        var tta = Test("tta", "--tta");
        Assert.That(tta, Is.EqualTo(Test("flip", "model.det_test.flip=true")));
        Assert.That(tta, Is.Not.EqualTo(Test("plain")), "the flip pass changes the untrained detector's detections");
        Assert.That(Test("tta-over-set", "--tta", "model.det_test.flip=false"), Is.EqualTo(tta), "--tta wins over --set model.det_test.flip=false");

        foreach (var (setting, expected) in new[]
        {
            ("model.det_test.scales=[]", "model.det_test.scales must hold at least one ratio"),
            ("model.det_test.scales=[1.0,-0.5]", "model.det_test.scales must be positive"),
            ("model.det_test.nms_iou=1.5", "model.det_test.nms_iou must be within [0, 1], got 1.5"),
            ("model.det_test.max_per_img=0", "model.det_test.max_per_img must be at least 1, got 0"),
        })
        {
            var config = ExperimentConfig.Load(configPath, overrides.Append(setting)).Config;
            var error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector).Dispose())!;
            Assert.That(error.Message, Does.Contain(expected), setting);
        }
        var segmentation = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var refused = Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation, ["model.det_test.flip=true"]))!;
        Assert.That(refused.Message, Does.Contain("model.det_test is a detection setting"));
    }
}
