using System.Text.Json;
using NUnit.Framework;
using OpenCvSharp;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Models;
using Vim.Data.Coco;
using Vim.Data.Demo;
using Vim.Data.Masks;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>`vim infer` for detection on a tiny detector: drawn PNGs at the original size, detections json, clear errors.</summary>
public class InferCommandTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-infer-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    internal static CascadeMaskRcnn TinyDetector()
    {
        var net = new VisionMamba(VimVariants.DetTiny with { EmbedDim = 32, Depth = 2, ImageSize = 64, DropPathRate = 0 }, 1);
        var roi = new CascadeRoiHeadsSettings
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count, BatchSizePerImage = 16, BoxHeadConvDims = [16], BoxHeadFcDims = [32],
            MaskHeadConvDims = [16, 16, 16, 16, 16],
        };
        var rpn = new RpnSettings { BatchSizePerImage = 32, PreNmsTopKTrain = 200, PostNmsTopKTrain = 50, PreNmsTopKTest = 200, PostNmsTopKTest = 50 };
        return new CascadeMaskRcnn(new SimpleFeaturePyramid(net, outChannels: 16, seed: 2), roi, rpn, seed: 3);
    }

    internal static CategoryMap DemoCategories() => new(DemoDatasetGenerator.ClassNames.Select((name, k) => new CocoCategory(DemoDatasetGenerator.CategoryIds[k], name, null)));

    /// <summary>A lossless, non-square image (80 wide, 48 high) of smooth colour ramps.</summary>
    private string WriteImage(string name)
    {
        using var image = new Mat(48, 80, MatType.CV_8UC3);
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 80; x++)
                image.Set(y, x, new Vec3b((byte)(3 * x), (byte)(5 * y), (byte)(x + y)));
        var path = Path.Combine(_root, name);
        Cv2.ImWrite(path, image);
        return path;
    }

    [Test]
    public void WritesAnOriginalSizePngAndTheDetectionsJsonPerImage()
    {
        using var scope = NewDisposeScope();
        using var model = TinyDetector();
        using var detector = new Detector(model, DemoCategories(), testSize: 64);
        var images = new[] { WriteImage("first.png"), WriteImage("second.png") };
        var outDir = Path.Combine(_root, "out");
        var results = InferCommand.RunDetection(detector, images, outDir, scoreThreshold: 0.0);

        Assert.That(results.Select(r => r.Image), Is.EqualTo(images));
        foreach (var (image, drawn, total) in results)
        {
            var name = Path.GetFileNameWithoutExtension(image);
            Assert.That(total, Is.GreaterThan(0), "an untrained head still scores above the model's 0.05 threshold");
            Assert.That(drawn, Is.EqualTo(total), "threshold 0 draws every detection");
            using var png = Cv2.ImRead(Path.Combine(outDir, name + ".png"), ImreadModes.Color);
            Assert.That((png.Rows, png.Cols), Is.EqualTo((48, 80)), "the drawing is on the original image");
            using var source = Cv2.ImRead(image, ImreadModes.Color);
            using var difference = new Mat();
            Cv2.Absdiff(png, source, difference);
            Assert.That(Cv2.CountNonZero(difference.Reshape(1)), Is.GreaterThan(0), "detections were drawn");

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, name + ".json")));
            var root = json.RootElement;
            Assert.That((root.GetProperty("height").GetInt32(), root.GetProperty("width").GetInt32()), Is.EqualTo((48, 80)));
            var detections = root.GetProperty("detections").EnumerateArray().ToList();
            Assert.That(detections, Has.Count.EqualTo(total));
            var scores = detections.Select(d => d.GetProperty("score").GetDouble()).ToList();
            Assert.That(scores, Is.Ordered.Descending);
            foreach (var d in detections)
            {
                long id = d.GetProperty("category_id").GetInt64();
                int k = DemoDatasetGenerator.CategoryIds.ToList().IndexOf(id);
                Assert.That(k, Is.GreaterThanOrEqualTo(0), "a dataset category id");
                Assert.That(d.GetProperty("category").GetString(), Is.EqualTo(DemoDatasetGenerator.ClassNames[k]));
                var box = d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.That(box[0], Is.InRange(0.0, 80.0));
                Assert.That(box[1], Is.InRange(0.0, 48.0));
                Assert.That(box[0] + box[2], Is.InRange(box[0], 80.0 + 1e-6), "the box stays in the original image");
                Assert.That(box[1] + box[3], Is.InRange(box[1], 48.0 + 1e-6));
                var segmentation = d.GetProperty("segmentation");
                Assert.That(segmentation.GetProperty("size").EnumerateArray().Select(v => v.GetInt32()), Is.EqualTo(new[] { 48, 80 }));
                var mask = Rle.FromCompressedString(segmentation.GetProperty("counts").GetString()!, 48, 80);
                var bits = mask.Decode();
                // Masks are pasted inside their boxes: no mask pixel lies outside the (rounded-out) box.
                for (int p = 0; p < bits.Length; p++)
                {
                    if (bits[p] == 0) continue;
                    int y = p / 80, x = p % 80;
                    Assert.That(x, Is.InRange(Math.Floor(box[0]) - 1, Math.Ceiling(box[0] + box[2]) + 1));
                    Assert.That(y, Is.InRange(Math.Floor(box[1]) - 1, Math.Ceiling(box[1] + box[3]) + 1));
                }
            }
        }
    }

    [Test]
    public void AThresholdAboveEveryScoreLeavesTheImageUnchangedAndTheListEmpty()
    {
        using var scope = NewDisposeScope();
        using var model = TinyDetector();
        using var detector = new Detector(model, DemoCategories(), testSize: 64);
        var image = WriteImage("plain.png");
        var outDir = Path.Combine(_root, "out");
        var (_, drawn, total) = InferCommand.RunDetection(detector, [image], outDir, scoreThreshold: 1.0).Single();
        Assert.That(total, Is.GreaterThan(0));
        Assert.That(drawn, Is.Zero, "softmax scores of an untrained head are far below 1");
        using var png = Cv2.ImRead(Path.Combine(outDir, "plain.png"), ImreadModes.Color);
        using var source = Cv2.ImRead(image, ImreadModes.Color);
        using var difference = new Mat();
        Cv2.Absdiff(png, source, difference);
        Assert.That(Cv2.CountNonZero(difference.Reshape(1)), Is.Zero);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "plain.json")));
        Assert.That(json.RootElement.GetProperty("detections").GetArrayLength(), Is.Zero);
    }

    [Test]
    public void AnInputPngInTheOutputFolderIsNotOverwritten()
    {
        using var scope = NewDisposeScope();
        using var model = TinyDetector();
        using var detector = new Detector(model, DemoCategories(), testSize: 64);
        var image = WriteImage("street.png");
        var before = File.ReadAllBytes(image);
        var e = Assert.Throws<VimException>(() => InferCommand.RunDetection(detector, [image], Path.GetDirectoryName(image)!, 0.3))!;
        Assert.That(e.Message, Does.StartWith(image).And.Contain("would be written over this input image"));
        Assert.That(File.ReadAllBytes(image), Is.EqualTo(before));
    }

    [Test]
    public void AnUnreadableImageIsNamed()
    {
        using var scope = NewDisposeScope();
        using var model = TinyDetector();
        using var detector = new Detector(model, DemoCategories(), testSize: 64);
        var broken = Path.Combine(_root, "broken.png");
        File.WriteAllText(broken, "not a png");
        var e = Assert.Throws<VimException>(() => InferCommand.RunDetection(detector, [broken], Path.Combine(_root, "out"), 0.3))!;
        Assert.That(e.Message, Does.Contain(broken).And.Contain("cannot decode"));
    }

    [Test]
    public void AFolderStandsForItsImagesInNameOrder()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_root, "photos")).FullName;
        foreach (var name in new[] { "b.png", "a.JPG", "c.webp", "notes.txt", "z.jpeg.bak" }) File.WriteAllText(Path.Combine(folder, name), "");
        Directory.CreateDirectory(Path.Combine(folder, "sub.png"));
        File.WriteAllText(Path.Combine(folder, "sub.png", "d.png"), "");
        var single = Path.Combine(_root, "single.png");

        Assert.That(InferCommand.ExpandFolders([single, folder]),
            Is.EqualTo(new[] { single, Path.Combine(folder, "a.JPG"), Path.Combine(folder, "b.png"), Path.Combine(folder, "c.webp") }),
            "files as given, then the folder's images by name (ordinal: upper case first), no text files, no subfolders");

        var empty = Directory.CreateDirectory(Path.Combine(_root, "empty")).FullName;
        File.WriteAllText(Path.Combine(empty, "readme.md"), "");
        var error = new StringWriter();
        var config = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", WriteTinyDetectorCheckpoint(), empty, "--out", Path.Combine(_root, "out")], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain($"{empty}: a folder without images (.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp)"));
    }

    [Test]
    public void CliNamesAMissingImageAndACheckpointThatDoesNotFitTheConfig()
    {
        var config = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        var checkpoint = WriteTinyDetectorCheckpoint();
        var image = WriteImage("scene.png");
        var missing = Path.Combine(_root, "nowhere.jpg");

        var error = new StringWriter();
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", checkpoint, image, missing, "--out", Path.Combine(_root, "out")], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain(missing).And.Contain("not found"));

        error = new StringWriter();
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", checkpoint, image, "--out", Path.Combine(_root, "out"),
            "--set", $"data.root={_root}"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain(checkpoint), "the error names the checkpoint");
        Assert.That(error.ToString(), Does.Contain("missing").Or.Contain("mismatch").Or.Contain("unexpected"));
        Assert.That(File.Exists(Path.Combine(_root, "out", "scene.png")), Is.False, "nothing is drawn with the wrong weights");
    }

    /// <summary>A checkpoint of the tiny test detector, whose weights do not fit the demo config's model.</summary>
    private string WriteTinyDetectorCheckpoint()
    {
        var checkpoint = Path.Combine(_root, "tiny.safetensors");
        using var scope = NewDisposeScope();
        using var detector = TinyDetector();
        SafeTensorsFormat.Write(checkpoint, detector.state_dict().Select(p => new KeyValuePair<string, Tensor>("model." + p.Key, p.Value)).ToList(),
            new Dictionary<string, string>());
        return checkpoint;
    }

    /// <summary>
    /// `--out` naming an existing file is refused naming the option, before any work; and a checkpoint that does not fit
    /// the config leaves no output folder behind, in `vim infer` and in `vim test`.
    /// </summary>
    [Test]
    public void CliRefusesAFileAsOutputFolderAndLeavesNoFolderForACheckpointThatDoesNotFit()
    {
        var config = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        var checkpoint = WriteTinyDetectorCheckpoint();
        var image = WriteImage("scene.png");
        var file = Path.Combine(_root, "results.txt");
        File.WriteAllText(file, "kept");

        var error = new StringWriter();
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", checkpoint, image, "--out", file, "--set", $"data.root={_root}"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--out").And.Contain(file).And.Contain("is a file"));
        error = new StringWriter();
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", checkpoint, image, "--out", Path.Combine(file, "sub"), "--set", $"data.root={_root}"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--out").And.Contain("is a file"));
        Assert.That(File.ReadAllText(file), Is.EqualTo("kept"));

        var inferOut = Path.Combine(_root, "infer-out");
        error = new StringWriter();
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", checkpoint, image, "--out", inferOut, "--set", $"data.root={_root}"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain(checkpoint).And.Contain("do not fit"));
        Assert.That(Directory.Exists(inferOut), Is.False, "no output folder for a refused checkpoint");

        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 4, ValImages = 2, Width = 64, Height = 64, Seed = 3,
        });
        var testOut = Path.Combine(_root, "test-out");
        error = new StringWriter();
        Assert.That(VimCli.Run(["test", config, "--checkpoint", checkpoint, "--out", testOut,
            "--set", $"data.root={Path.Combine(_root, "coco")}", "--set", "data.crop_size=[64,64]", "--set", "data.num_workers=0"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain(checkpoint).And.Contain("do not fit"));
        Assert.That(Directory.Exists(testOut), Is.False, "no output folder for a refused checkpoint");
        error = new StringWriter();
        Assert.That(VimCli.Run(["test", config, "--checkpoint", checkpoint, "--out", file, "--set", $"data.root={Path.Combine(_root, "coco")}"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--out").And.Contain("is a file"));
    }
}
