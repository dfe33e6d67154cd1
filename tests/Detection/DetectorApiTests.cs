using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Detection;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// The library's <see cref="Detector"/>: opened from a config and a checkpoint it equals <see cref="DetectionInference.Predict(CascadeMaskRcnn, string, int, DetectionTestConfig?, IReadOnlyList{TransformStepConfig}?)"/>
/// on a model holding the checkpoint's weights, names classes as the training annotation file does, takes files, encoded
/// bytes, raw pixels and batches alike, refuses bad input by name, leaves no memory behind and can be shared by threads.
/// </summary>
public class DetectorApiTests
{
    private string _root = null!;
    private string _config = null!;
    private string _checkpoint = null!;
    private CascadeMaskRcnn _trained = null!;
    private CascadeMaskRcnn _averaged = null!;

    /// <summary>The training file's categories as it lists them: not in id order, so the class order (ascending ids) is visible.</summary>
    private static readonly (long Id, string Name)[] FileCategories = [(42, "zebra"), (7, "ant"), (19, "moth")];

    /// <summary>A Vim-Ti detector at 64² with small heads; the checkpoint's weights are those of runtime.seed 7 ("model") and 9 ("ema").</summary>
    [OneTimeSetUp]
    public void WriteConfigAndCheckpoint()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-detector-api-").FullName;
        var annotations = Directory.CreateDirectory(Path.Combine(_root, "coco", "annotations")).FullName;
        File.WriteAllText(Path.Combine(annotations, "instances_train.json"),
            "{\"images\": [], \"annotations\": [], \"categories\": [" +
            string.Join(", ", FileCategories.Select(c => $"{{\"id\": {c.Id}, \"name\": \"{c.Name}\", \"supercategory\": \"animal\"}}")) + "]}");
        _config = Path.Combine(_root, "det.yaml");
        File.WriteAllText(_config, $"""
            task: detection
            data:
              type: coco
              root: {Path.Combine(_root, "coco")}
              train_split: train
              val_split: val
              crop_size: [64, 64]
              batch_size: 1
              num_workers: 0
            model:
              num_classes: 3
              backbone:
                name: vimdet_tiny
                img_size: 64
                drop_path_rate: 0.0
                pretrained: null
              det_head:
                rpn_pre_nms_topk_test: 200
                rpn_post_nms_topk_test: 50
                box_head_conv_dims: [16]
                box_head_fc_dims: [32]
                mask_head_conv_dims: [16, 16]
            """);
        _trained = ModelOfSeed(7);
        _averaged = ModelOfSeed(9);
        _checkpoint = Path.Combine(_root, "iter_3.safetensors");
        PredictorTestKit.SaveCheckpoint(_checkpoint, _trained, ExperimentConfig.Load(_config).Config, _averaged);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _trained.Dispose();
        _averaged.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>The config's model built with another runtime.seed: other weights than the config's own seed initialises.</summary>
    private CascadeMaskRcnn ModelOfSeed(int seed) => DetectionTask.FromConfig(ExperimentConfig.Load(_config, [$"runtime.seed={seed}"]).Config);

    private string WriteImage(string name, int width = 80, int height = 48, int shift = 0) =>
        PredictorTestKit.WriteImage(Path.Combine(_root, name), width, height, shift);

    /// <summary>
    /// The tensors <see cref="DetectionInference.Predict(CascadeMaskRcnn, string, int, DetectionTestConfig?, IReadOnlyList{TransformStepConfig}?)"/> returns, read
    /// here without the API's conversion, against each managed detection: boxes, scores and classes bit for bit, the
    /// masks equal once their RLE is decoded, category ids and names as the training file lists them.
    /// </summary>
    private static void AssertEqualsInference(Instances expected, ImageDetections actual)
    {
        Assert.That((actual.Height, actual.Width), Is.EqualTo((expected.ImageHeight, expected.ImageWidth)));
        Assert.That(actual.Detections, Has.Count.EqualTo(expected.Count));
        var boxes = expected.Boxes.Tensor.cpu().contiguous().data<float>().ToArray();
        var scores = expected.Scores!.cpu().contiguous().data<float>().ToArray();
        var classes = expected.Classes!.cpu().contiguous().data<long>().ToArray();
        var masks = expected.Masks!.cpu().to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
        int plane = actual.Height * actual.Width;
        var ids = new long[] { 7, 19, 42 };
        var names = new[] { "ant", "moth", "zebra" };
        for (int i = 0; i < actual.Detections.Count; i++)
        {
            var d = actual.Detections[i];
            Assert.That(new[] { d.X1, d.Y1, d.X2, d.Y2, d.Score }.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(new[] { boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], scores[i] }.Select(BitConverter.SingleToInt32Bits)), $"detection {i}");
            Assert.That(d.ClassIndex, Is.EqualTo(classes[i]));
            Assert.That((d.CategoryId, d.CategoryName), Is.EqualTo((ids[d.ClassIndex], names[d.ClassIndex])), "classes in ascending id order");
            Assert.That(d.Mask, Is.Not.Null);
            Assert.That((d.Mask!.Height, d.Mask.Width), Is.EqualTo((actual.Height, actual.Width)));
            Assert.That(d.MaskBitmap(), Is.EqualTo(masks.AsSpan(i * plane, plane).ToArray()), $"mask {i}");
        }
    }

    private static void AssertSame(ImageDetections expected, ImageDetections actual, string what)
    {
        Assert.That((actual.Height, actual.Width), Is.EqualTo((expected.Height, expected.Width)), what);
        Assert.That(actual.Detections, Has.Count.EqualTo(expected.Detections.Count), what);
        for (int i = 0; i < expected.Detections.Count; i++)
        {
            var (e, a) = (expected.Detections[i], actual.Detections[i]);
            Assert.That(a with { Mask = null }, Is.EqualTo(e with { Mask = null }), $"{what}: detection {i}");
            Assert.That(a.Mask?.Counts, Is.EqualTo(e.Mask?.Counts), $"{what}: mask {i}");
        }
    }

    [Test]
    public void OpenedFromConfigAndCheckpointItEqualsDetectionInferenceWithTheTrainingFilesCategories()
    {
        var image = WriteImage("scene.png");
        using var detector = Detector.Load(_config, _checkpoint);
        Assert.That(detector.Categories.CategoryIds, Is.EqualTo(new long[] { 7, 19, 42 }));
        Assert.That(detector.Categories.Names, Is.EqualTo(new[] { "ant", "moth", "zebra" }));
        Assert.That((detector.TestSize, detector.Device), Is.EqualTo((64, "cpu")));
        var found = detector.Predict(image);
        Assert.That(found.Detections, Is.Not.Empty, "an untrained head still scores above the model's 0.05 threshold");

        using var scope = NewDisposeScope();
        AssertEqualsInference(DetectionInference.Predict(_trained, image, 64), found);
    }

    /// <summary>--ema takes the "ema" entry; overrides reach the test settings (flip on: test-time augmentation); a published file holds the trained weights.</summary>
    [Test]
    public void EmaOverridesAndPublishedCheckpointsChooseTheWeightsAndSettings()
    {
        var image = WriteImage("ema.png", shift: 40);
        using var scope = NewDisposeScope();
        using (var averaged = Detector.Load(_config, _checkpoint, new ModelLoadOptions { Ema = true, Device = "cpu" }))
            AssertEqualsInference(DetectionInference.Predict(_averaged, image, 64), averaged.Predict(image));

        using (var flipped = Detector.Load(_config, _checkpoint, new ModelLoadOptions { Overrides = ["model.det_test.flip=true"] }))
        {
            var expected = DetectionInference.Predict(_trained, image, 64, new DetectionTestConfig { Flip = true });
            AssertEqualsInference(expected, flipped.Predict(image));
            using var plain = DetectionInference.Predict(_trained, image, 64).Boxes.Tensor;
            Assert.That(expected.Boxes.Tensor.shape.SequenceEqual(plain.shape) && expected.Boxes.Tensor.equal(plain).item<bool>(), Is.False,
                "the flip changes the detections, so the override was applied");
        }

        var published = TrainingCheckpoint.Publish(_checkpoint, Path.Combine(_root, "published.safetensors"), ema: false);
        using var fromPublished = Detector.Load(_config, published);
        AssertEqualsInference(DetectionInference.Predict(_trained, image, 64), fromPublished.Predict(image));
    }

    [Test]
    public void WithoutTheAnnotationFileClassesAreNamedByIndexWithANote()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_root, "no-data")).FullName;
        var notes = new StringWriter();
        using var detector = Detector.Load(_config, _checkpoint, new ModelLoadOptions { Overrides = [$"data.root={empty}"], Log = notes });
        Assert.That(detector.Categories.Names, Is.EqualTo(new[] { "class 0", "class 1", "class 2" }));
        Assert.That(detector.Categories.CategoryIds, Is.EqualTo(new long[] { 1, 2, 3 }));
        Assert.That(notes.ToString(), Does.Contain("note: no annotation file").And.Contain(empty));
    }

    [Test]
    public void AFileItsBytesAndItsPixelsGiveTheSameDetections()
    {
        using var model = InferCommandTests.TinyDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        foreach (var image in new[] { WriteImage("lossless.png"), WriteImage("lossy.jpg", 72, 56, 9) })
        {
            var fromFile = detector.Predict(image);
            Assert.That(fromFile.Detections, Is.Not.Empty);
            AssertSame(fromFile, detector.Predict(File.ReadAllBytes(image)), $"{image} as bytes");
            AssertSame(fromFile, detector.Predict(PredictorTestKit.PixelsOf(image)), $"{image} as pixels");
        }
    }

    [Test]
    public void ABatchGivesEachImagesSingleResult()
    {
        using var model = InferCommandTests.TinyDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var images = new[] { WriteImage("a.png"), WriteImage("b.png", 64, 64, 30), WriteImage("c.png", 40, 96, 60) };
        var singles = images.Select(image => detector.Predict(image)).ToList();
        Assert.That(singles.Select(s => (s.Height, s.Width)), Is.EqualTo(new[] { (48, 80), (64, 64), (96, 40) }));
        var batches = new[]
        {
            detector.Predict(images),
            detector.Predict(images.Select(File.ReadAllBytes).ToList()),
            detector.Predict(images.Select(PredictorTestKit.PixelsOf).ToList()),
        };
        foreach (var batch in batches)
        {
            Assert.That(batch, Has.Count.EqualTo(3));
            for (int i = 0; i < 3; i++) AssertSame(singles[i], batch[i], $"image {i}");
        }
        Assert.That(detector.Predict(Array.Empty<string>()), Is.Empty);
    }

    [Test]
    public void BadConfigsCheckpointsAndImagesAreRefusedByName()
    {
        string Refused(Action open) => Assert.Throws<VimException>(() => open())!.Message;

        var missingConfig = Path.Combine(_root, "absent.yaml");
        Assert.That(Refused(() => Detector.Load(missingConfig, _checkpoint).Dispose()), Does.Contain("absent.yaml").And.Contain("not found"));
        var segmentation = Path.Combine(_root, "seg.yaml");
        File.WriteAllText(segmentation, "task: segmentation\nmodel:\n  num_classes: 3\n");
        Assert.That(Refused(() => Detector.Load(segmentation, _checkpoint).Dispose()),
            Does.StartWith($"{segmentation}: task is segmentation, expected detection").And.Contain("Vim.Segmentation.Segmentor"));
        var typo = Path.Combine(_root, "typo.yaml");
        File.WriteAllText(typo, "task: detection\nmodel:\n  num_clases: 3\n");
        Assert.That(Refused(() => Detector.Load(typo, _checkpoint).Dispose()), Does.Contain("typo.yaml").And.Contain("num_clases"));
        Assert.That(Refused(() => Detector.Load(_config, _checkpoint, new ModelLoadOptions { Device = "gpu" }).Dispose()),
            Does.Contain("runtime.device").And.Contain("'gpu'"));

        var missingCheckpoint = Path.Combine(_root, "absent.safetensors");
        Assert.That(Refused(() => Detector.Load(_config, missingCheckpoint).Dispose()), Is.EqualTo($"{missingCheckpoint}: checkpoint file not found"));
        var corrupt = Path.Combine(_root, "corrupt.safetensors");
        var bytes = File.ReadAllBytes(_checkpoint);
        bytes[^1] ^= 0x40; // the last tensor's last byte
        File.WriteAllBytes(corrupt, bytes);
        Assert.That(Refused(() => Detector.Load(_config, corrupt).Dispose()), Does.StartWith($"{corrupt}: checksum mismatch"));
        var other = Path.Combine(_root, "tiny.safetensors");
        using (var scope = NewDisposeScope())
        using (var tiny = InferCommandTests.TinyDetector())
            SafeTensorsFormat.Write(other, tiny.state_dict().Select(p => new KeyValuePair<string, Tensor>("model." + p.Key, p.Value)).ToList(),
                new Dictionary<string, string>());
        Assert.That(Refused(() => Detector.Load(_config, other).Dispose()), Does.StartWith(other).And.Contain("do not fit"));
        Assert.That(Refused(() => Detector.Load(_config, other, new ModelLoadOptions { Ema = true }).Dispose()), Does.StartWith(other));

        using var model = InferCommandTests.TinyDetector();
        var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var missingImage = Path.Combine(_root, "absent.png");
        Assert.That(Refused(() => detector.Predict(missingImage)), Does.StartWith(missingImage).And.Contain("not found"));
        var notAnImage = Path.Combine(_root, "notes.png");
        File.WriteAllText(notAnImage, "not a png");
        Assert.That(Refused(() => detector.Predict(notAnImage)), Does.StartWith(notAnImage).And.Contain("cannot decode"));
        Assert.That(Refused(() => detector.Predict("not a png"u8.ToArray())), Does.StartWith("encoded image: cannot decode"));
        Assert.That(Refused(() => detector.Predict(new List<byte[]> { File.ReadAllBytes(WriteImage("fine.png")), new byte[] { 1, 2, 3 } })), Does.StartWith("encoded image 1: cannot decode"));
        Assert.That(Refused(() => _ = new RgbImage(48, 80, new byte[48 * 80])), Does.Contain("3840 bytes for a 80x48 image"));
        Assert.That(Refused(() => _ = new Detector(model, new CategoryMap([new CocoCategory(1, "one", null)]), 64)),
            Does.Contain("5 classes but 1 category names"));

        detector.Dispose();
        Assert.Throws<ObjectDisposedException>(() => detector.Predict(WriteImage("late.png")));
        Assert.That(model.RoiHeads.Settings.NumClasses, Is.EqualTo(5), "a detector that does not own its model leaves it usable");
    }

    /// <summary>
    /// A few hundred predictions inside the caller's dispose scope leave no tensor alive there or anywhere on the thread, and
    /// the native heap where it was after the first ones: results are managed copies, every tensor is freed per prediction.
    /// </summary>
    [Test]
    public void MemoryStaysFlatOverManyPredictions()
    {
        using var model = InferCommandTests.TinyDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var pixels = PredictorTestKit.PixelsOf(WriteImage("repeat.png"));
        int detections = 0;
        // One prediction's masks alone are 50 x 48 x 80 bytes (192 kB): 200 leaked would be 38 MB.
        PredictorTestKit.AssertMemoryStaysFlat(() => detections += detector.Predict(pixels).Detections.Count, count: 200, heapSlackBytes: 4L << 20);
        Assert.That(detections, Is.GreaterThan(220), "each prediction returned detections (with masks)");
    }

    /// <summary>Threads sharing one detector get what one thread gets: predictions take turns, none sees another's buffers.</summary>
    [Test]
    public void ThreadsSharingADetectorGetTheSequentialResults()
    {
        using var model = InferCommandTests.TinyDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var images = Enumerable.Range(0, 4).Select(k => WriteImage($"thread{k}.png", 80 - 8 * k, 48 + 4 * k, 25 * k)).ToArray();
        PredictorTestKit.AssertThreadsGetTheSequentialResults(images, detector.Predict, AssertSame);
    }
}
