using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

/// <summary>
/// The library's <see cref="Segmentor"/>: opened from a config and a checkpoint, its class map is the argmax of the
/// checkpoint's model's logits computed here directly (its scores those logits, or with flip the mean of two softmax
/// outputs), with the class names of class_names.txt and the VOC palette; files, bytes, pixels and batches agree; bad
/// input is refused by name; memory stays flat; threads may share it.
/// </summary>
public class SegmentorApiTests
{
    private string _root = null!;
    private string _config = null!;
    private string _checkpoint = null!;
    private EncoderDecoder _trained = null!;

    private static readonly string[] Names = ["sky", "road", "tree"];

    /// <summary>UperNet on Vim-Ti at 64², whole-image test at data.scale 64; the checkpoint holds the weights of seed 7 (the config's is 0).</summary>
    [OneTimeSetUp]
    public void WriteConfigAndCheckpoint()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-segmentor-api-").FullName;
        var data = Directory.CreateDirectory(Path.Combine(_root, "ade")).FullName;
        File.WriteAllText(Path.Combine(data, "class_names.txt"), string.Join('\n', Names) + "\n");
        _config = Path.Combine(_root, "seg.yaml");
        File.WriteAllText(_config, $"""
            task: segmentation
            data:
              type: ade20k
              root: {data}
              crop_size: [64, 64]
              scale: [64, 64]
              batch_size: 1
              num_workers: 0
            model:
              num_classes: 3
              backbone:
                name: vimseg_tiny
                img_size: 64
                drop_path_rate: 0.0
                pretrained: null
              seg_head:
                channels: 16
                auxiliary_channels: 16
              seg_test:
                mode: whole
            """);
        var (config, _) = ExperimentConfig.Load(_config);
        _trained = EncoderDecoder.FromConfig(config, seed: 7);
        _checkpoint = Path.Combine(_root, "best.safetensors");
        PredictorTestKit.SaveCheckpoint(_checkpoint, _trained, config);
        _trained.eval();
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _trained.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private string WriteImage(string name, int width, int height, int shift = 0) =>
        PredictorTestKit.WriteImage(Path.Combine(_root, name), width, height, shift);

    /// <summary>
    /// The seed-7 model's logits for an image already at the test size (so the test resize keeps it): mmseg's normalisation
    /// ((v − mean) / std with ImageNet's mean and std, as float32 computes it), the forward, the bilinear resize to the image.
    /// </summary>
    private Tensor Logits(RgbImage image, bool flipped = false)
    {
        double[] mean = [123.675, 116.28, 103.53], std = [58.395, 57.12, 57.375];
        int plane = image.Height * image.Width;
        var chw = new float[3 * plane];
        for (int p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + p] = (image.Pixels[3 * p + c] - (float)mean[c]) * (float)(1 / std[c]);
        using var noGrad = no_grad();
        var input = tensor(chw, [1, 3, image.Height, image.Width]);
        var logits = flipped ? _trained.call(input.flip(3)).flip(3) : _trained.call(input);
        return nn.functional.interpolate(logits, size: [image.Height, image.Width], mode: InterpolationMode.Bilinear, align_corners: false);
    }

    private static ushort[] Argmax(Tensor scores) => Array.ConvertAll(scores.argmax(1).flatten().data<long>().ToArray(), c => (ushort)c);

    [Test]
    public void OpenedFromConfigAndCheckpointItsMapIsTheArgmaxOfTheModelsLogits()
    {
        var image = WriteImage("square.png", 64, 64);
        using var segmentor = Segmentor.Load(_config, _checkpoint);
        Assert.That(segmentor.ClassNames, Is.EqualTo(Names));
        // The PASCAL VOC palette: class k's colour spreads the bits of k + 1 over the high bits of R, G, B.
        Assert.That(segmentor.Palette, Is.EqualTo(new (byte, byte, byte)[] { (128, 0, 0), (0, 128, 0), (128, 128, 0) }));
        var result = segmentor.Predict(image, ScoreRequest.For(2, 0));

        using var scope = NewDisposeScope();
        var logits = Logits(PredictorTestKit.PixelsOf(image));
        var expected = Argmax(logits);
        Assert.That((result.Height, result.Width), Is.EqualTo((64, 64)));
        Assert.That(result.ClassMap, Is.EqualTo(expected));
        Assert.That(expected.Distinct().Count(), Is.GreaterThan(1), "the untrained model's map is not constant, so the comparison says something");
        Assert.That(result.ClassAt(17, 5), Is.EqualTo(expected[5 * 64 + 17]));
        Assert.That((result.ClassNames, result.Palette), Is.EqualTo((segmentor.ClassNames, segmentor.Palette)));

        var scores = result.Scores!;
        Assert.That((scores.Kind, scores.Classes, scores.Height, scores.Width), Is.EqualTo((ScoreKind.Logits, new[] { 2, 0 }, 64, 64)));
        Assert.That(scores.Of(2).ToArray(), Is.EqualTo(logits[0, 2].flatten().data<float>().ToArray()).Within(1e-5));
        Assert.That(scores.Of(0).ToArray(), Is.EqualTo(logits[0, 0].flatten().data<float>().ToArray()).Within(1e-5));
        Assert.Throws<ArgumentException>(() => scores.Of(1));
        Assert.That(segmentor.Predict(image).Scores, Is.Null, "no scores unless asked for");
    }

    /// <summary>With model.seg_test.flip (an override) the scores are the mean of the image's and the mirrored image's softmax outputs.</summary>
    [Test]
    public void WithFlipTheScoresAreTheMeanOfBothPassesProbabilities()
    {
        var image = WriteImage("flip.png", 64, 64, shift: 50);
        using var segmentor = Segmentor.Load(_config, _checkpoint, new ModelLoadOptions { Overrides = ["model.seg_test.flip=true"], Device = "cpu" });
        Assert.That(segmentor.Device, Is.EqualTo("cpu"));
        var result = segmentor.Predict(image, ScoreRequest.AllClasses);

        using var scope = NewDisposeScope();
        var pixels = PredictorTestKit.PixelsOf(image);
        var expected = (Logits(pixels).softmax(1) + Logits(pixels, flipped: true).softmax(1)) / 2;
        Assert.That(result.Scores!.Kind, Is.EqualTo(ScoreKind.Probabilities));
        Assert.That(result.Scores.Classes, Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(result.Scores.Values, Is.EqualTo(expected.flatten().data<float>().ToArray()).Within(1e-6));
        Assert.That(result.ClassMap, Is.EqualTo(Argmax(expected)));
    }

    [Test]
    public void WithoutClassNamesTheClassesAreNamedByIndexWithANote()
    {
        var bare = Directory.CreateDirectory(Path.Combine(_root, "bare")).FullName;
        var notes = new StringWriter();
        using var segmentor = Segmentor.Load(_config, _checkpoint, new ModelLoadOptions { Overrides = [$"data.root={bare}"], Log = notes });
        Assert.That(segmentor.ClassNames, Is.EqualTo(new[] { "class 0", "class 1", "class 2" }));
        Assert.That(notes.ToString(), Does.Contain("note: no class names").And.Contain("model.num_classes 3"));
    }

    private static Segmentor TinySegmentor(EncoderDecoder model) =>
        new(model, [64, 64], new SegmentationTestConfig { Mode = "slide", CropSize = [32, 32], Stride = [24, 24] },
            ["a", "b", "c", "d", "e"]);

    private static void AssertSame(ImageSegmentation expected, ImageSegmentation actual, string what)
    {
        Assert.That((actual.Height, actual.Width), Is.EqualTo((expected.Height, expected.Width)), what);
        Assert.That(actual.ClassMap, Is.EqualTo(expected.ClassMap), what);
        Assert.That(actual.Scores?.Values, Is.EqualTo(expected.Scores?.Values), what);
    }

    [Test]
    public void AFileItsBytesAndItsPixelsGiveTheSameSegmentationAtTheOriginalSize()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model);
        foreach (var image in new[] { WriteImage("wide.png", 96, 40), WriteImage("tall.jpg", 50, 90, 20) })
        {
            var fromFile = segmentor.Predict(image, ScoreRequest.For(4));
            var (height, width) = image.EndsWith(".png") ? (40, 96) : (90, 50);
            Assert.That((fromFile.Height, fromFile.Width, fromFile.ClassMap.Length), Is.EqualTo((height, width, height * width)));
            AssertSame(fromFile, segmentor.Predict(File.ReadAllBytes(image), ScoreRequest.For(4)), $"{image} as bytes");
            AssertSame(fromFile, segmentor.Predict(PredictorTestKit.PixelsOf(image), ScoreRequest.For(4)), $"{image} as pixels");
        }
    }

    [Test]
    public void ABatchGivesEachImagesSingleResult()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model);
        var images = new[] { WriteImage("a.png", 64, 64), WriteImage("b.png", 80, 48, 30), WriteImage("c.png", 33, 70, 60) };
        var singles = images.Select(image => segmentor.Predict(image, ScoreRequest.AllClasses)).ToList();
        var batches = new[]
        {
            segmentor.Predict(images, ScoreRequest.AllClasses),
            segmentor.Predict(images.Select(File.ReadAllBytes).ToList(), ScoreRequest.AllClasses),
            segmentor.Predict(images.Select(PredictorTestKit.PixelsOf).ToList(), ScoreRequest.AllClasses),
        };
        foreach (var batch in batches)
        {
            Assert.That(batch, Has.Count.EqualTo(3));
            for (int i = 0; i < 3; i++) AssertSame(singles[i], batch[i], $"image {i}");
        }
    }

    [Test]
    public void BadConfigsClassListsScoreRequestsAndImagesAreRefusedByName()
    {
        string Refused(Action open) => Assert.Throws<VimException>(() => open())!.Message;

        var detection = Path.Combine(_root, "det.yaml");
        File.WriteAllText(detection, "task: detection\nmodel:\n  num_classes: 3\n");
        Assert.That(Refused(() => Segmentor.Load(detection, _checkpoint).Dispose()),
            Does.StartWith($"{detection}: task is detection, expected segmentation").And.Contain("Vim.Detection.Detector"));
        var twoNames = Directory.CreateDirectory(Path.Combine(_root, "two")).FullName;
        var list = Path.Combine(twoNames, "class_names.txt");
        File.WriteAllText(list, "sky\nroad\n");
        Assert.That(Refused(() => Segmentor.Load(_config, _checkpoint, new ModelLoadOptions { Overrides = [$"data.root={twoNames}"] }).Dispose()),
            Is.EqualTo($"model.num_classes is 3 but the dataset has 2 classes ({list})"));
        var missing = Path.Combine(_root, "absent.safetensors");
        Assert.That(Refused(() => Segmentor.Load(_config, missing).Dispose()), Is.EqualTo($"{missing}: checkpoint file not found"));

        Assert.That(Refused(() => ScoreRequest.For()), Does.Contain("no class index"));
        Assert.That(Refused(() => ScoreRequest.For(1, -2)), Does.Contain("class index -2 is negative"));
        Assert.That(Refused(() => ScoreRequest.For(1, 3, 1)), Does.Contain("class index 1 is given twice"));
        using var model = SegmentationTaskTests.TinyModel();
        Assert.That(Refused(() => _ = new Segmentor(model, [64, 64], new SegmentationTestConfig(), ["a", "b"])), Does.Contain("5 classes but 2 class names"));
        var segmentor = TinySegmentor(model);
        var image = WriteImage("ok.png", 32, 32);
        Assert.That(Refused(() => segmentor.Predict(image, ScoreRequest.For(5))), Does.Contain("class index 5 is not a class of this segmentor (0..4)"));
        var broken = Path.Combine(_root, "broken.jpg");
        File.WriteAllBytes(broken, [0xFF, 0xD8, 0xFF, 0x00]);
        Assert.That(Refused(() => segmentor.Predict(broken)), Does.StartWith(broken).And.Contain("cannot decode"));
        Assert.That(Refused(() => segmentor.Predict(Array.Empty<byte>())), Does.StartWith("encoded image: cannot decode"));

        segmentor.Dispose();
        Assert.Throws<ObjectDisposedException>(() => segmentor.Predict(image));
        Assert.That(model.NumClasses, Is.EqualTo(5), "a segmentor that does not own its model leaves it usable");
    }

    /// <summary>Predictions with every class's scores leave no tensor alive and the native heap where it was.</summary>
    [Test]
    public void MemoryStaysFlatOverManyPredictions()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model);
        var pixels = PredictorTestKit.PixelsOf(WriteImage("repeat.png", 72, 56));
        // One prediction's scores alone are 5 x 72 x 56 floats (81 kB): 300 leaked would be 24 MB.
        PredictorTestKit.AssertMemoryStaysFlat(() => Assert.That(segmentor.Predict(pixels, ScoreRequest.AllClasses).Scores!.Values, Has.Length.EqualTo(5 * 72 * 56)),
            count: 300, heapSlackBytes: 4L << 20);
    }

    [Test]
    public void ThreadsSharingASegmentorGetTheSequentialResults()
    {
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = TinySegmentor(model);
        var images = Enumerable.Range(0, 4).Select(k => WriteImage($"thread{k}.png", 64 - 6 * k, 48 + 5 * k, 40 * k)).ToArray();
        PredictorTestKit.AssertThreadsGetTheSequentialResults(images, image => segmentor.Predict(image, ScoreRequest.For(1)), AssertSame);
    }
}
