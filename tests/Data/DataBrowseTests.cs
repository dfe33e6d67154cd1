using NUnit.Framework;
using OpenCvSharp;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Data;

/// <summary>
/// `vim data browse`: drawings of what the data pipeline feeds the model, checked against geometry worked out by hand
/// (a 2× test resize, a forced flip), palette blends computed by hand, and the training loader's own batches.
/// </summary>
public class DataBrowseTests
{
    // The scene: a 64×48 image, grey 60 but for a red object at [10, 30) × [8, 24) (RectangleScene), with a crowd
    // region over plain grey at [40, 56) × [30, 42). Both are annotated as polygons of class "box".
    private const int SceneWidth = 64, SceneHeight = 48;
    private static readonly Vec3b Grey = new(60, 60, 60);

    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    private void WriteCocoScene(string split)
    {
        var scene = RectangleScene.Create(SceneHeight, SceneWidth, x0: 10, y0: 8, x1: 30, y1: 24);
        _files.WriteRgb(Path.Combine("coco", split, "scene.png"), SceneHeight, SceneWidth, (y, x) =>
        {
            int p = 3 * (y * SceneWidth + x);
            return (scene.Image[p], scene.Image[p + 1], scene.Image[p + 2]);
        });
        _files.WriteText(Path.Combine("coco", "annotations", $"instances_{split}.json"), $$"""
            {"images": [{"id": 1, "file_name": "scene.png", "width": {{SceneWidth}}, "height": {{SceneHeight}}}],
             "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 8, 20, 16], "area": 320, "iscrowd": 0,
                "segmentation": [[10, 8, 30, 8, 30, 24, 10, 24]]},
               {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 30, 16, 12], "area": 192, "iscrowd": 1,
                "segmentation": [[40, 30, 56, 30, 56, 42, 40, 42]]}],
             "categories": [{"id": 1, "name": "box"}]}
            """);
    }

    /// <summary>A detection config on the scene; crop 128 makes the test resize fit 64×48 into 128² by exactly 2.</summary>
    private string WriteDetectionConfig()
    {
        WriteCocoScene("train");
        WriteCocoScene("val");
        return _files.WriteText("det.yaml", $"""
            task: detection
            data:
              type: coco
              root: {_files.PathOf("coco")}
              train_split: train
              val_split: val
              crop_size: [128, 128]
              batch_size: 1
              num_workers: 0
            model:
              num_classes: 1
            """);
    }

    private static Vec3b Bgr((byte R, byte G, byte B) rgb) => new(rgb.B, rgb.G, rgb.R);

    private static void AssertPixels(Mat png, IEnumerable<(int X, int Y)> pixels, Vec3b expected, string what)
    {
        foreach (var (x, y) in pixels) Assert.That(png.At<Vec3b>(y, x), Is.EqualTo(expected), $"{what}: pixel ({x}, {y})");
    }

    private static IEnumerable<(int X, int Y)> Column(int x, int y0, int y1) => Enumerable.Range(y0, y1 - y0 + 1).Select(y => (x, y));

    private static IEnumerable<(int X, int Y)> Row(int y, int x0, int x1) => Enumerable.Range(x0, x1 - x0 + 1).Select(x => (x, y));

    private static IEnumerable<(int X, int Y)> Block(int x0, int x1, int y0, int y1) =>
        Enumerable.Range(y0, y1 - y0).SelectMany(y => Enumerable.Range(x0, x1 - x0).Select(x => (x, y)));

    private static void AssertBlend(Vec3b actual, Vec3b image, (byte R, byte G, byte B) colour, string what)
    {
        // Half the image and half the colour; where the sum is odd the drawing may round either way.
        Assert.That(actual.Item0, Is.EqualTo((image.Item0 + colour.B) / 2.0).Within(0.5), $"{what}: blue");
        Assert.That(actual.Item1, Is.EqualTo((image.Item1 + colour.G) / 2.0).Within(0.5), $"{what}: green");
        Assert.That(actual.Item2, Is.EqualTo((image.Item2 + colour.R) / 2.0).Within(0.5), $"{what}: red");
    }

    [Test]
    public void DetectionValidationDrawsTheGroundTruthScaledOnTheTestResizedImage()
    {
        var config = WriteDetectionConfig();
        var outDir = _files.PathOf("out");
        Assert.That(VimCli.Run(["data", "browse", config, "--split", "val", "--out", outDir]), Is.Zero);

        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.EqualTo(new[] { "scene_0.png" }), "one sample, named by its image and index");
        using var png = Cv2.ImRead(Path.Combine(outDir, "scene_0.png"), ImreadModes.Color);
        Assert.That((png.Cols, png.Rows), Is.EqualTo((128, 96)), "64×48 fitted into 128×128 keeping its ratio: ×2");

        // The object's box [10, 30) × [8, 24) scaled by 2 is [20, 60) × [16, 48): pixel columns 20..59, rows 16..47.
        var colour = Bgr(DetectionVisualizer.Colour(0));
        AssertPixels(png, Column(20, 16, 47), colour, "left edge");
        AssertPixels(png, Column(59, 16, 47), colour, "right edge");
        AssertPixels(png, Row(16, 20, 59), colour, "top edge");
        AssertPixels(png, Row(47, 20, 59), colour, "bottom edge");
        AssertBlend(png.At<Vec3b>(32, 40), new Vec3b(RectangleScene.Red.B, RectangleScene.Red.G, RectangleScene.Red.R), DetectionVisualizer.Colour(0), "inside the mask");

        // Far from both instances and their tags the image is untouched: grey, which resizing leaves grey.
        AssertPixels(png, Block(0, 16, 52, 96), Grey, "bottom-left, away from every instance");
        AssertPixels(png, Block(64, 128, 0, 40), Grey, "top-right, away from every instance");

        // The crowd region [40, 56) × [30, 42) becomes [80, 112) × [60, 84): a grey dashed box, dashes of 4 from each corner.
        var crowd = Bgr(DetectionVisualizer.CrowdColour);
        foreach (var (x, y) in Row(83, 80, 111).Concat(Column(111, 60, 83)))
        {
            int along = x == 111 ? y - 60 : x - 80;
            if (along % (2 * DetectionVisualizer.DashLength) < DetectionVisualizer.DashLength)
                Assert.That(png.At<Vec3b>(y, x), Is.EqualTo(crowd), $"crowd box dash at ({x}, {y})");
            else
                Assert.That(png.At<Vec3b>(y, x), Is.Not.EqualTo(crowd), $"crowd box gap at ({x}, {y})");
        }
        Assert.That(png.At<Vec3b>(72, 96), Is.EqualTo(new Vec3b(130, 130, 130)), "crowd mask: half grey 60, half crowd grey 200");
    }

    [Test]
    public void AForcedHorizontalFlipDrawsTheBoxMirrored()
    {
        WriteDetectionConfig();
        var dataset = CocoInstanceDataset.Load(_files.PathOf("coco", "annotations", "instances_val.json"), _files.PathOf("coco", "val"));
        var pipeline = new TransformPipeline(
            new RandomFlip(new RandomFlipOptions { Prob = 1 }),
            new Resize(new ResizeOptions { Scales = [[128, 128]] }),
            new Normalize(new NormalizeOptions()));
        var loader = new DataLoader(dataset, pipeline, new LoaderOptions { BatchSize = 1, Kind = BatchKind.Detection, NumWorkers = 0, Shuffle = false, DropLast = false });
        var outDir = _files.PathOf("flipped");
        var written = DataBrowseCommand.WriteSamples(loader.Samples(0, endless: false), 1, outDir, s => DataBrowseCommand.DrawDetectionSample(s, ["box"]), TextWriter.Null);

        using var png = Cv2.ImRead(written.Single(), ImreadModes.Color);
        Assert.That((png.Cols, png.Rows), Is.EqualTo((128, 96)));
        // Mirrored, [10, 30) becomes [64 − 30, 64 − 10) = [34, 54); scaled, columns 68..107 (rows still 16..47). The
        // mirrored crowd region [16, 48) × [60, 84) hangs its tag from row 59 upwards over the box's lower left corner,
        // so the left and bottom edges are checked clear of it.
        var colour = Bgr(DetectionVisualizer.Colour(0));
        AssertPixels(png, Column(68, 16, 40), colour, "mirrored left edge");
        AssertPixels(png, Column(107, 16, 47), colour, "mirrored right edge");
        AssertPixels(png, Row(47, 90, 107), colour, "mirrored bottom edge");
        AssertPixels(png, Column(59, 20, 44), Grey, "where the unflipped box's right edge would be");
        AssertPixels(png, Column(20, 20, 44), Grey, "where the unflipped box's left edge would be");
    }

    [Test]
    public void SegmentationValidationBlendsThePaletteAndLeavesIgnoredPixelsAsTheImage()
    {
        // 64×48: left half RGB (100, 50, 20) labelled 3 (class 2 after reduce_zero_label); right half (30, 140, 200),
        // labelled 0 (ignored) above row 24 and 1 (class 0) below. JPEG keeps flat areas away from the edges flat.
        foreach (var split in new[] { "training", "validation" })
        {
            _files.WriteRgb(Path.Combine("ade", "images", split, "scene.jpg"), SceneHeight, SceneWidth,
                (y, x) => x < 32 ? ((byte)100, (byte)50, (byte)20) : ((byte)30, (byte)140, (byte)200));
            _files.WriteGray(Path.Combine("ade", "annotations", split, "scene.png"), SceneHeight, SceneWidth,
                (y, x) => x < 32 ? (byte)3 : y < 24 ? (byte)0 : (byte)1);
        }
        _files.WriteText(Path.Combine("ade", "class_names.txt"), "wall\nthing\nsky\n");
        var configPath = _files.WriteText("seg.yaml", $"""
            task: segmentation
            data:
              type: ade20k
              root: {_files.PathOf("ade")}
              train_split: training
              val_split: validation
              scale: [128, 96]
              crop_size: [64, 64]
              batch_size: 1
              num_workers: 0
            model:
              num_classes: 3
            """);
        var (config, _) = ExperimentConfig.Load(configPath);
        var progress = new StringWriter();
        var outDir = _files.PathOf("out");
        var written = DataBrowseCommand.Browse(config, training: false, count: 4, epoch: 0, outDir, progress);

        var expectedFile = Path.Combine(outDir, "scene_0.png");
        Assert.That(written, Is.EqualTo(new[] { expectedFile }), "the split has one image, so one of the 4 asked for");
        Assert.That(progress.ToString(), Does.Contain("has 1 images").And.Contain($"[1/1] {expectedFile}"));
        using var png = Cv2.ImRead(expectedFile, ImreadModes.Color);
        Assert.That((png.Cols, png.Rows), Is.EqualTo((128, 96)), "data.scale [128, 96] fits 64×48 by exactly 2");

        using var source = Cv2.ImRead(_files.PathOf("ade", "images", "validation", "scene.jpg"), ImreadModes.Color);
        Vec3b Flat(int x, int y)
        {
            // The source pixels the 2× bilinear resize reads around (x, y) are equal, so the resized pixel is this one.
            foreach (var (dx, dy) in Block(-1, 2, -1, 2))
                Assert.That(source.At<Vec3b>(y + dy, x + dx), Is.EqualTo(source.At<Vec3b>(y, x)), $"JPEG source flat around ({x}, {y})");
            return source.At<Vec3b>(y, x);
        }
        AssertBlend(png.At<Vec3b>(40, 30), Flat(15, 20), SegmentationVisualizer.Colour(2), "class 2 (VOC palette (128, 128, 0))");
        AssertBlend(png.At<Vec3b>(80, 100), Flat(50, 40), SegmentationVisualizer.Colour(0), "class 0 (VOC palette (128, 0, 0))");
        Assert.That(SegmentationVisualizer.Colour(2), Is.EqualTo(((byte)128, (byte)128, (byte)0)));
        Assert.That(png.At<Vec3b>(10, 100), Is.EqualTo(Flat(50, 5)), "an ignored pixel stays the image's");
    }

    /// <summary>
    /// The training split through the real mmseg recipe (random resize, crop, flip, photometric distortion, pad): each
    /// drawing is the batch the training loader hands the trainer, pixel for pixel (its normalised image undone), in the
    /// loader's order and continuing into the next epochs.
    /// </summary>
    [Test]
    public void SegmentationTrainingDrawsWhatTheTrainingLoaderFeedsTheModel()
    {
        var root = _files.PathOf("ade");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = root, TrainImages = 3, ValImages = 4, Width = 64, Height = 48, Seed = 5 });
        var config = new ExperimentConfig
        {
            Task = TaskKind.Segmentation,
            Data = new DataConfig { Type = "ade20k", Root = root, CropSize = [32, 40], Scale = [64, 48], BatchSize = 2, NumWorkers = 0 },
            Model = new ModelConfig { NumClasses = DemoDatasetGenerator.ClassNames.Count },
            Runtime = new RuntimeConfig { Seed = 11 },
        };
        var outDir = _files.PathOf("out");
        // 3 images make one batch of 2 per epoch: 5 samples come from epochs 0, 1 and 2.
        var written = DataBrowseCommand.Browse(config, training: true, count: 5, epoch: 0, outDir, TextWriter.Null);
        Assert.That(written, Has.Count.EqualTo(5));

        var loader = new SegmentationData(config).TrainingLoader(config.Runtime.Seed, DataShard.Whole);
        var normalize = new NormalizeOptions();
        int k = 0;
        foreach (var batch in loader.Infinite().Take(3))
        {
            using var scope = NewDisposeScope();
            using var owned = batch;
            var images = batch.Images.data<float>().ToArray();
            var labels = batch.Labels!.data<long>().ToArray();
            int height = (int)batch.Images.shape[2], width = (int)batch.Images.shape[3], plane = height * width;
            for (int n = 0; n < batch.Count && k < written.Count; n++, k++)
            {
                var meta = batch.Metas[n];
                Assert.That(Path.GetFileName(written[k]), Is.EqualTo($"{Path.GetFileNameWithoutExtension(meta.FilePath)}_{k}.png"), $"sample {k}");
                using var png = Cv2.ImRead(written[k], ImreadModes.Color);
                Assert.That((png.Rows, png.Cols), Is.EqualTo((32, 40)), "padded to data.crop_size, as the batch");
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                    {
                        var drawn = png.At<Vec3b>(y, x);
                        if (y >= meta.ContentHeight || x >= meta.ContentWidth)
                        {
                            Assert.That(drawn, Is.EqualTo(new Vec3b(0, 0, 0)), $"sample {k} padding at ({x}, {y}) shows the pad value");
                            continue;
                        }
                        var rgb = new byte[3];
                        for (int c = 0; c < 3; c++)
                            rgb[c] = (byte)Math.Round(images[((n * 3 + c) * plane) + y * width + x] * normalize.Std[c] + normalize.Mean[c]);
                        var image = new Vec3b(rgb[2], rgb[1], rgb[0]);
                        long label = labels[n * plane + y * width + x];
                        if (label == config.Model.SegHead.IgnoreIndex) Assert.That(drawn, Is.EqualTo(image), $"sample {k} ignored pixel ({x}, {y})");
                        else AssertBlend(drawn, image, SegmentationVisualizer.Colour((int)label), $"sample {k} pixel ({x}, {y}) of class {label}");
                    }
            }
        }
        Assert.That(k, Is.EqualTo(5));
    }

    [Test]
    public void DetectionTrainingDrawsTheTrainingLoadersSamplesAtTheirSizes()
    {
        var root = _files.PathOf("coco");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = root, TrainImages = 4, ValImages = 4, Width = 64, Height = 64, Seed = 2 });
        var config = _files.WriteText("det.yaml", $$"""
            task: detection
            data: {type: coco, root: {{root}}, train_split: train, val_split: val, crop_size: [48, 48], batch_size: 1, num_workers: 0}
            model: {num_classes: {{DemoDatasetGenerator.ClassNames.Count}}}
            runtime: {seed: 3}
            """);
        var outDir = _files.PathOf("out");
        Assert.That(VimCli.Run(["data", "browse", config, "--count", "6", "--epoch", "1", "--out", outDir]), Is.Zero);

        var (loaded, _) = ExperimentConfig.Load(config);
        var loader = new DetectionData(loaded).TrainingLoader(3, DataShard.Whole);
        var expected = new List<(string Name, int Height, int Width)>();
        foreach (var batch in loader.Infinite(new LoaderPosition(1, 0)).Take(6))
        {
            using var owned = batch;
            var meta = batch.Metas[0];
            expected.Add(($"{Path.GetFileNameWithoutExtension(meta.FilePath)}_{expected.Count}.png", meta.ContentHeight, meta.ContentWidth));
        }
        var files = Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.That(files, Is.EqualTo(expected.Select(e => e.Name).Order(StringComparer.Ordinal).ToList()), "epoch 1 onward, in the loader's order");
        foreach (var (name, height, width) in expected)
        {
            using var png = Cv2.ImRead(Path.Combine(outDir, name), ImreadModes.Color);
            Assert.That((png.Rows, png.Cols), Is.EqualTo((height, width)), name);
            Assert.That(Math.Max(height, width), Is.LessThanOrEqualTo(48), "the LSJ crop is at most data.crop_size");
        }
    }

    [Test]
    public void BadOptionsNameTheOptionAndWhatWasExpected()
    {
        var config = WriteDetectionConfig();
        var outDir = _files.PathOf("out");
        string Refused(params string[] args)
        {
            var error = new StringWriter();
            Assert.That(VimCli.Run(["data", "browse", .. args], error), Is.EqualTo(1), string.Join(' ', args));
            return error.ToString();
        }
        Assert.That(Refused(config, "--split", "test", "--out", outDir), Does.Contain("--split: expected train").And.Contain("or val").And.Contain("\"test\""));
        Assert.That(Refused(config, "--count", "0", "--out", outDir), Does.Contain("--count: expected a positive number").And.Contain("got 0"));
        Assert.That(Refused(config, "--epoch", "-1", "--out", outDir), Does.Contain("--epoch: expected an epoch number of 0 or more, got -1"));
        Assert.That(Refused(config, "--split", "val", "--epoch", "2", "--out", outDir), Does.Contain("--epoch: applies to --split train only"));
        var missing = _files.PathOf("missing.yaml");
        Assert.That(Refused(missing, "--out", outDir), Does.Contain("config file not found").And.Contain("missing.yaml"));
        Assert.That(Refused(config, "--set", "data.root=" + _files.PathOf("nowhere"), "--out", outDir), Does.Contain("data.root").And.Contain("nowhere").And.Contain("does not exist"));
        Assert.That(Refused(config, "--set", "data.batch_size=2", "--out", outDir), Does.Contain("data.batch_size is 2").And.Contain("1 image(s)"),
            "the training split must fill one batch, as for training");
        var file = _files.WriteText("taken", "x");
        Assert.That(Refused(config, "--out", file), Does.Contain("--out").And.Contain("is a file"));
        Assert.That(Directory.Exists(outDir), Is.False, "nothing is written when an option is refused");
    }
}
