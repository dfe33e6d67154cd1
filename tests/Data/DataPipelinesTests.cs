using System.Runtime.InteropServices;
using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Data;

/// <summary>
/// data.train_pipeline / data.test_pipeline (<see cref="DataPipelines"/>): the official recipes written out as YAML give
/// the samples of the recipes built directly, to the byte; a custom pipeline gives the samples of the same steps built in
/// code; bad pipelines are refused naming file, line, key and step; `vim data browse`, the Detector / Segmentor API and a
/// training run follow the configured pipelines.
/// </summary>
public class DataPipelinesTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>The ADE recipe of data.crop_size [32, 40], data.scale [64, 48] and ignore index 255, as docs/FROM_MMDETECTION.md writes it out.</summary>
    private const string SegmentationRecipe = """
          train_pipeline:
            - resize: {scales: [[64, 48]], ratio_range: [0.5, 2.0]}
            - random_crop: {height: 32, width: 40, cat_max_ratio: 0.75}
            - random_flip: {prob: 0.5}
            - photo_metric_distortion: {}
            - normalize: {}
            - pad: {size: [32, 40], seg_pad_value: 255}
          test_pipeline:
            - resize: {scales: [[64, 48]]}
            - normalize: {}
        """;

    /// <summary>The LSJ recipe of data.crop_size 48.</summary>
    private const string DetectionRecipe = """
          train_pipeline:
            - random_flip: {prob: 0.5}
            - resize_scale: {min_scale: 0.1, max_scale: 2.0, target_height: 48, target_width: 48}
            - fixed_size_crop: {height: 48, width: 48, pad: false}
            - normalize: {}
          test_pipeline:
            - resize: {scales: [[48, 48]], resampling: pillow_bilinear}
            - normalize: {}
        """;

    /// <summary>Four 64×48 training and three validation images of the demo ADE data under &lt;root&gt;/ade.</summary>
    private string GenerateAde()
    {
        var root = _files.PathOf("ade");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = root, TrainImages = 4, ValImages = 3, Width = 64, Height = 48, Seed = 5 });
        return root;
    }

    /// <summary>A segmentation config on the demo ADE data (seed 11, crop 32×40, scale (64, 48), batches of 2); <paramref name="data"/> and <paramref name="model"/> are more keys of those sections (indented by 2).</summary>
    private string SegmentationConfig(string name, string data = "", string model = "") =>
        WriteConfig(name, "segmentation", seed: 11, ["type: ade20k", $"root: {_files.PathOf("ade")}", "crop_size: [32, 40]", "scale: [64, 48]", "batch_size: 2"], data, model);

    /// <summary>A detection config on the demo COCO data (seed 3, crop 48, batches of 1).</summary>
    private string DetectionConfig(string name, string data = "", string model = "") =>
        WriteConfig(name, "detection", seed: 3, ["type: coco", $"root: {_files.PathOf("coco")}", "train_split: train", "val_split: val", "crop_size: [48, 48]", "batch_size: 1"],
            data, model);

    /// <summary>The pipelines (<paramref name="data"/>) come last, so their steps' lines are the file's last.</summary>
    private string WriteConfig(string name, string task, int seed, string[] datasetKeys, string data, string model) =>
        _files.WriteText(name, string.Join('\n', [
            $"task: {task}", $"runtime: {{seed: {seed}}}", "model:", $"  num_classes: {DemoDatasetGenerator.ClassNames.Count}", model,
            "data:", "  num_workers: 0", .. datasetKeys.Select(key => "  " + key), data]) + "\n");

    /// <summary>The training loader <see cref="SegmentationConfig"/>'s data builds (seed 11, batches of 2), through <paramref name="pipeline"/> built here.</summary>
    private static DataLoader SegmentationTrainingLoader(SegmentationData data, ISampleTransform pipeline) =>
        new(data.TrainingSamples, pipeline, new LoaderOptions
        {
            BatchSize = 2, Kind = BatchKind.Segmentation, NumWorkers = 0, Seed = 11, Shuffle = true, DropLast = true, SegPadValue = 255,
        });

    private static ExperimentConfig Load(string path, params string[] overrides) => ExperimentConfig.Load(path, overrides).Config;

    /// <summary>
    /// Asserts two arrays hold the same bytes; says where they first differ. (NUnit's element-by-element comparison boxes
    /// each element, minutes for the megapixel samples of the official recipes.)
    /// </summary>
    private static void AssertSameBytes<T>(T[]? actual, T[]? expected, string what) where T : unmanaged
    {
        Assert.That(actual is null, Is.EqualTo(expected is null), $"{what}: present");
        if (actual is null || expected is null) return;
        var a = MemoryMarshal.AsBytes(actual.AsSpan());
        var e = MemoryMarshal.AsBytes(expected.AsSpan());
        int common = a.CommonPrefixLength(e);
        Assert.That(common == a.Length && a.Length == e.Length, $"{what}: {a.Length} and {e.Length} bytes, first difference at byte {common}");
    }

    /// <summary>The first <paramref name="count"/> samples of both streams equal: geometry, image bytes, labels, instances and mask pixels.</summary>
    private static void AssertSameSamples(IEnumerable<DataSample> actual, IEnumerable<DataSample> expected, int count, string what)
    {
        var got = actual.Take(count).ToList();
        var wanted = expected.Take(count).ToList();
        Assert.That(got, Has.Count.EqualTo(count), what);
        Assert.That(wanted, Has.Count.EqualTo(count), what);
        for (int i = 0; i < count; i++)
        {
            var (a, e) = (got[i], wanted[i]);
            var where = $"{what}: sample {i} ({Path.GetFileName(e.FilePath)})";
            Assert.That((a.FilePath, a.Height, a.Width, a.ContentHeight, a.ContentWidth, a.Flipped),
                Is.EqualTo((e.FilePath, e.Height, e.Width, e.ContentHeight, e.ContentWidth, e.Flipped)), where);
            Assert.That(a.NormalizedImage, Is.Not.Null, where);
            AssertSameBytes(a.NormalizedImage, e.NormalizedImage, $"{where}: normalised image");
            AssertSameBytes(a.LabelMap, e.LabelMap, $"{where}: label map");
            AssertSameBytes(a.Boxes, e.Boxes, $"{where}: boxes");
            Assert.That(a.Labels, Is.EqualTo(e.Labels), $"{where}: classes");
            Assert.That(a.IsCrowd, Is.EqualTo(e.IsCrowd), $"{where}: crowd flags");
            Assert.That(a.Masks?.Count, Is.EqualTo(e.Masks?.Count), $"{where}: masks");
            for (int m = 0; m < (a.Masks?.Count ?? 0); m++) AssertSameBytes(a.Masks![m].Pixels, e.Masks![m].Pixels, $"{where}: mask {m}");
        }
    }

    /// <summary>
    /// The mmseg ADE20k recipe written as data.train_pipeline / data.test_pipeline gives, for the same seed, the samples of
    /// <see cref="TransformPipeline.SegmentationTraining"/> built here (over two epochs of shuffles, crops, flips and
    /// distortions), and so does the config without pipelines; each test scale's views are the recipe's at data.scale ×
    /// the ratio: 64×48 fitted into (32, 24) and (80, 60), by hand 32×24 and 80×60.
    /// </summary>
    [Test]
    public void TheSegmentationRecipeWrittenAsYamlGivesTheRecipesSamples()
    {
        GenerateAde();
        const string scales = "  seg_test: {scales: [0.5, 1.25]}";
        var written = new SegmentationData(Load(SegmentationConfig("written.yaml", SegmentationRecipe, scales)));
        var recipe = new SegmentationData(Load(SegmentationConfig("recipe.yaml", model: scales)));
        var expected = SegmentationTrainingLoader(written, TransformPipeline.SegmentationTraining(32, 40, 64, 48, 255));
        int[] testSides = [32, 80];
        foreach (var (data, name) in new[] { (written, "YAML recipe"), (recipe, "no pipeline keys") })
        {
            // Four images in batches of two: eight samples are two epochs.
            AssertSameSamples(data.TrainingLoader(11, DataShard.Whole).Samples(0, endless: true), expected.Samples(0, endless: true), 8, name);
            var views = data.TestPipelines();
            Assert.That(views, Has.Count.EqualTo(2), name);
            for (int k = 0; k < 2; k++)
            {
                var viewSamples = data.EvaluationLoader(data.ValSet, views[k]).Samples(0, endless: false).ToList();
                Assert.That(viewSamples.Select(s => (s.Width, s.Height)), Is.All.EqualTo((testSides[k], testSides[k] * 3 / 4)), $"{name}: scale {k}");
                var recipeView = TransformPipeline.SegmentationTesting(testSides[k], testSides[k] * 3 / 4);
                AssertSameSamples(viewSamples, data.EvaluationLoader(data.ValSet, recipeView).Samples(0, endless: false), 3, $"{name}: test scale {k}");
            }
        }
    }

    /// <summary>
    /// The ViTDet LSJ recipe written out gives the samples (images, boxes, masks) of <see cref="TransformPipeline.DetectionLsjTraining"/>
    /// built here, and the test views of ratios 0.75 and 1 those of <see cref="TransformPipeline.DetectionTesting"/> at
    /// 36 and 48 (64² images: 36² and 48²).
    /// </summary>
    [Test]
    public void TheDetectionRecipeWrittenAsYamlGivesTheRecipesSamples()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = _files.PathOf("coco"), TrainImages = 4, ValImages = 3, Width = 64, Height = 64, Seed = 2 });
        const string scales = "  det_test: {scales: [0.75, 1.0]}";
        var written = new DetectionData(Load(DetectionConfig("written.yaml", DetectionRecipe, scales)));
        var recipe = new DetectionData(Load(DetectionConfig("recipe.yaml", model: scales)));
        var expected = new DataLoader(written.TrainingSamples, TransformPipeline.DetectionLsjTraining(48), new LoaderOptions
        {
            BatchSize = 1, Kind = BatchKind.Detection, NumWorkers = 0, Seed = 3, Shuffle = true, DropLast = true, SizeDivisor = 32,
        });
        int[] testSides = [36, 48];
        foreach (var (data, name) in new[] { (written, "YAML recipe"), (recipe, "no pipeline keys") })
        {
            AssertSameSamples(data.TrainingLoader(3, DataShard.Whole).Samples(0, endless: true), expected.Samples(0, endless: true), 8, name);
            var views = data.TestPipelines();
            for (int k = 0; k < 2; k++)
            {
                var viewSamples = data.EvaluationLoader(data.ValSet, views[k]).Samples(0, endless: false).ToList();
                Assert.That(viewSamples.Select(s => (s.Width, s.Height)), Is.All.EqualTo((testSides[k], testSides[k])), $"{name}: scale {k}");
                AssertSameSamples(viewSamples, data.EvaluationLoader(data.ValSet, TransformPipeline.DetectionTesting(testSides[k])).Samples(0, endless: false), 3,
                    $"{name}: test scale {k}");
            }
        }
    }

    /// <summary>
    /// The recipes docs/FROM_MMDETECTION.md writes out at the official sizes (its "Data pipelines" YAML blocks, read from the
    /// file) are the recipes: on a 160×120 scene, for ten seeds each, the same image bytes, label map, boxes and masks as
    /// <see cref="TransformPipeline"/>'s factories at crop 512, scale (2048, 512), ignore 255 and LSJ 1024.
    /// </summary>
    [Test]
    public void TheRecipesInTheDocsAreTheRecipes()
    {
        var doc = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docs", "FROM_MMDETECTION.md"));
        var section = doc[doc.IndexOf("## Data pipelines", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", 3, StringComparison.Ordinal)];
        var blocks = section.Split("```yaml")[1..].Select(block => block[..block.IndexOf("```", StringComparison.Ordinal)]).ToList();
        Assert.That(blocks, Has.Count.EqualTo(2), "a segmentation and a detection block");
        (IReadOnlyList<TransformStepConfig> Train, IReadOnlyList<TransformStepConfig> Test) Steps(string yaml)
        {
            var data = (ConfigMap)((ConfigMap)ConfigLoader.Parse(yaml, "FROM_MMDETECTION.md"))["data"]!;
            return (ConfigBinder.Bind<List<TransformStepConfig>>(data["train_pipeline"]!, DataPipelines.TrainKey),
                ConfigBinder.Bind<List<TransformStepConfig>>(data["test_pipeline"]!, DataPipelines.TestKey));
        }
        var segmentation = Steps(blocks[0]);
        var detection = Steps(blocks[1]);
        var pairs = new (string What, IReadOnlyList<TransformStepConfig> Steps, string Key, TransformPipeline Recipe)[]
        {
            ("segmentation training", segmentation.Train, DataPipelines.TrainKey, TransformPipeline.SegmentationTraining(512, 512, 2048, 512, 255)),
            ("segmentation testing", segmentation.Test, DataPipelines.TestKey, TransformPipeline.SegmentationTesting(2048, 512)),
            ("detection training", detection.Train, DataPipelines.TrainKey, TransformPipeline.DetectionLsjTraining(1024)),
            ("detection testing", detection.Test, DataPipelines.TestKey, TransformPipeline.DetectionTesting(1024)),
        };
        foreach (var (what, steps, key, recipe) in pairs)
        {
            var written = TransformPipeline.FromConfig(steps, key);
            var samples = Enumerable.Range(0, 10).Select(seed =>
            {
                var (a, e) = (RectangleScene.Create(), RectangleScene.Create());
                written.Apply(a, new Random(seed));
                recipe.Apply(e, new Random(seed));
                return (a, e);
            }).ToList();
            AssertSameSamples(samples.Select(p => p.a), samples.Select(p => p.e), 10, what);
        }
    }

    /// <summary>Segmentation without photometric distortion, a 24×16 crop and other normalisation statistics.</summary>
    private const string CustomSegmentation = """
          train_pipeline:
            - resize: {scales: [[64, 48]], ratio_range: [1.0, 1.5]}
            - random_crop: {height: 24, width: 16}
            - random_flip: {prob: 0.5}
            - normalize: {mean: [100, 110, 120], std: [50, 60, 70]}
            - pad: {size: [24, 16]}
          test_pipeline:
            - resize: {scales: [[32, 32]]}
            - normalize: {mean: [100, 110, 120], std: [50, 60, 70]}
        """;

    private static TransformPipeline CustomSegmentationInCode() => new(
        new Resize(new ResizeOptions { Scales = [[64, 48]], RatioRange = [1.0, 1.5] }),
        new RandomCrop(new RandomCropOptions { Height = 24, Width = 16 }),
        new RandomFlip(new RandomFlipOptions { Prob = 0.5 }),
        new Normalize(new NormalizeOptions { Mean = [100, 110, 120], Std = [50, 60, 70] }),
        new Pad(new PadOptions { Size = [24, 16] }));

    /// <summary>
    /// A pipeline of its own (no photometric distortion, a 24×16 crop instead of data.crop_size 32×40, other mean and std):
    /// the training batches are 2×3×24×16 with 2×24×16 labels, and every pixel and label equals the batches of the same
    /// steps built in code.
    /// </summary>
    [Test]
    public void ACustomPipelineFeedsBatchesOfItsSizeEqualToTheSameStepsBuiltInCode()
    {
        GenerateAde();
        var data = new SegmentationData(Load(SegmentationConfig("custom.yaml", CustomSegmentation)));
        var expected = SegmentationTrainingLoader(data, CustomSegmentationInCode());
        using var actualBatches = data.TrainingLoader(11, DataShard.Whole).Infinite().Take(4).GetEnumerator();
        using var expectedBatches = expected.Infinite().Take(4).GetEnumerator();
        int batches = 0;
        while (actualBatches.MoveNext())
        {
            Assert.That(expectedBatches.MoveNext());
            using var scope = NewDisposeScope();
            using var actual = actualBatches.Current;
            using var wanted = expectedBatches.Current;
            Assert.That(actual.Images.shape, Is.EqualTo(new long[] { 2, 3, 24, 16 }), $"batch {batches}");
            Assert.That(actual.Labels!.shape, Is.EqualTo(new long[] { 2, 24, 16 }), $"batch {batches}");
            Assert.That(actual.Images.data<float>().ToArray(), Is.EqualTo(wanted.Images.data<float>().ToArray()), $"batch {batches} images");
            Assert.That(actual.Labels.data<long>().ToArray(), Is.EqualTo(wanted.Labels!.data<long>().ToArray()), $"batch {batches} labels");
            batches++;
        }
        Assert.That(batches, Is.EqualTo(4));
    }

    /// <summary>
    /// `vim data browse` draws what the configured pipeline feeds: the training drawings are 16 wide and 24 high (the custom
    /// crop, where the recipe would give data.crop_size 40×32), each the drawing of the code-built steps' sample; the
    /// validation drawings are the 64×48 images fitted into the test pipeline's 32² (32×24).
    /// </summary>
    [Test]
    public void DataBrowseDrawsTheConfiguredPipelinesSamples()
    {
        GenerateAde();
        var config = Load(SegmentationConfig("custom.yaml", CustomSegmentation));
        var written = DataBrowseCommand.Browse(config, training: true, count: 5, epoch: 0, _files.PathOf("train"), TextWriter.Null);
        var data = new SegmentationData(config);
        var expected = SegmentationTrainingLoader(data, CustomSegmentationInCode()).Samples(0, endless: true).Take(5).ToList();
        Assert.That(written, Has.Count.EqualTo(5));
        for (int i = 0; i < 5; i++)
        {
            using var png = Cv2.ImRead(written[i], ImreadModes.Color);
            Assert.That((png.Cols, png.Rows), Is.EqualTo((16, 24)), written[i]);
            using var drawing = DataBrowseCommand.DrawSegmentationSample(expected[i], data.IgnoreIndex);
            using var difference = new Mat();
            Cv2.Absdiff(png, drawing, difference);
            Assert.That(Cv2.CountNonZero(difference.Reshape(1)), Is.Zero, $"{written[i]} is the code-built steps' sample {i}");
        }

        var validation = DataBrowseCommand.Browse(config, training: false, count: 3, epoch: 0, _files.PathOf("val"), TextWriter.Null);
        Assert.That(validation, Has.Count.EqualTo(3));
        foreach (var file in validation)
        {
            using var png = Cv2.ImRead(file, ImreadModes.Color);
            Assert.That((png.Cols, png.Rows), Is.EqualTo((32, 24)), file);
        }
    }

    /// <summary>Writes a segmentation config whose data section ends with <paramref name="pipelines"/>; returns its path and the line of its first pipeline step.</summary>
    private (string Path, int FirstStepLine) PipelineConfig(string pipelines, string model = "", bool detection = false)
    {
        var path = detection ? DetectionConfig("bad.yaml", pipelines, model) : SegmentationConfig("bad.yaml", pipelines, model);
        var lines = File.ReadAllLines(path);
        return (path, Array.FindIndex(lines, line => line.TrimStart().StartsWith("- ", StringComparison.Ordinal)) + 1);
    }

    private string Refusal(string pipelines, string model = "", bool detection = false)
    {
        var (path, _) = PipelineConfig(pipelines, model, detection);
        var error = Assert.Throws<VimException>(() => DataPipelines.Check(Load(path)))!;
        Assert.That(error.Message, Does.Contain(path), "the file is named");
        return error.Message;
    }

    /// <summary>
    /// Each refusal names the file and line, the key and the step's index, and what was expected: a missing normalize, a
    /// step after it, a pad to a size larger images can reach (here the resize's 128² at ratio 2), a segmentation pad value
    /// other than the ignore index, an unknown step or option, a bad option value, test steps the prediction cannot be
    /// mapped back from, test scales without a resize to scale, and an empty list. The tasks refuse them when their data
    /// is built, before training.
    /// </summary>
    [Test]
    public void BadPipelinesAreRefusedNamingFileLineKeyAndStep()
    {
        GenerateAde();
        var (path, first) = PipelineConfig("""
              train_pipeline:
                - resize: {scales: [[64, 48]]}
                - normalize: {}
                - random_flip: {prob: 0.5}
            """);
        var error = Assert.Throws<VimException>(() => _ = new SegmentationData(Load(path)))!;
        Assert.That(error.Message, Does.StartWith($"{path}:{first + 2}: data.train_pipeline[2]: random_flip comes after normalize (data.train_pipeline[1])"));

        Assert.That(Refusal("""
              train_pipeline:
                - resize: {scales: [[64, 48]]}
                - random_flip: {}
            """), Does.Contain("data.train_pipeline has no normalize step").And.Contain("- normalize: {}"));
        Assert.That(Refusal("""
              train_pipeline:
                - resize: {scales: [[64, 48]], ratio_range: [0.5, 2.0]}
                - normalize: {}
                - pad: {size: [32, 40]}
            """), Does.Contain("data.train_pipeline[2]: pad to size [32, 40] can receive images up to 128x128 (after data.train_pipeline[0])")
                .And.Contain("crop to at most 40x32 before it"));
        Assert.That(Refusal("""
              train_pipeline:
                - normalize: {}
                - pad: {size: [32, 40]}
            """), Does.Contain("data.train_pipeline[1]: pad to size [32, 40] can receive images of any size"));
        Assert.That(Refusal("""
              train_pipeline:
                - random_affine: {}
                - normalize: {}
            """), Does.Contain("data.train_pipeline[0]: random_affine is a detection step (mmdet's RandomAffine) and has no fill for label maps"));
        Assert.That(Refusal("""
              train_pipeline:
                - random_crop: {height: 32, width: 40}
                - normalize: {}
                - pad: {size: [32, 40], seg_pad_value: 0}
            """), Does.Contain("data.train_pipeline[2]: pad's seg_pad_value is 0, but model.seg_head.ignore_index is 255"));
        Assert.That(Refusal("""
              train_pipeline:
                - random_crop: {height: 32, width: 40, ignore_index: 0}
                - normalize: {}
            """), Does.Contain("data.train_pipeline[0]: random_crop's ignore_index is 0, but model.seg_head.ignore_index is 255"));
        Assert.That(Refusal("""
              train_pipeline:
                - random_turn: {}
                - normalize: {}
            """), Does.Contain($":{first}: unknown key 'data.train_pipeline[0].random_turn'").And.Contain("valid keys here: resize, "));
        Assert.That(Refusal("""
              train_pipeline:
                - random_rotate: {prob: 0.5, degree: 20, seg_pad_val: 0}
                - normalize: {}
            """), Does.Contain("data.train_pipeline[0]: random_rotate's seg_pad_val is 0, but model.seg_head.ignore_index is 255"));
        // auto_bound's canvas holds the turned 32×40 crop: up to its diagonal, ⌈√(32² + 40²)⌉ = 52, on either side.
        Assert.That(Refusal("""
              train_pipeline:
                - random_crop: {height: 32, width: 40}
                - random_rotate: {prob: 0.5, degree: 20, auto_bound: true}
                - normalize: {}
                - pad: {size: [32, 40]}
            """), Does.Contain("data.train_pipeline[3]: pad to size [32, 40] can receive images up to 52x52 (after data.train_pipeline[1])"));
        Assert.That(Refusal("""
              train_pipeline:
                - normalize: {}
                - random_flip: {probability: 0.5}
            """), Does.Contain("unknown key 'data.train_pipeline[1].random_flip.probability'; did you mean 'data.train_pipeline[1].random_flip.prob'?"));
        Assert.That(Refusal("""
              train_pipeline:
                - random_flip: {prob: 2}
                - normalize: {}
            """), Does.Contain($":{first}: data.train_pipeline[0]: RandomFlip prob 2 must be in [0, 1]"));
        Assert.That(Refusal("""
              train_pipeline:
                - {random_flip: {prob: 0.5}, normalize: {}}
            """), Does.Contain("data.train_pipeline[0]: a transform step needs exactly one of"));
        Assert.That(Refusal("""
              train_pipeline: []
            """), Does.Contain("data.train_pipeline is empty"));
        Assert.That(Refusal("""
              train_pipeline: {resize: {}}
            """), Does.Contain("'data.train_pipeline' must be a list, got a mapping"));

        Assert.That(Refusal("""
              test_pipeline:
                - resize: {scales: [[64, 48]]}
                - random_flip: {prob: 0.5}
                - normalize: {}
            """), Does.Contain("data.test_pipeline[1]: random_flip cannot be a test step").And.Contain("model.seg_test.flip"));
        Assert.That(Refusal("""
              test_pipeline:
                - resize: {scales: [[64, 48]], ratio_range: [0.5, 2.0]}
                - normalize: {}
            """), Does.Contain("data.test_pipeline[0]: resize with ratio_range draws a size at random"));
        Assert.That(Refusal("""
              test_pipeline:
                - resize: {scales: [[64, 48]]}
                - normalize: {}
                - pad: {size_divisor: 32}
            """), Does.Contain("data.test_pipeline[2]: pad cannot be a test step; a segmentation test pipeline may resize (one scale, or resize_shortest_edge with one length), normalize, adjust_gamma, clahe, rgb2gray:"));
        Assert.That(Refusal("""
              test_pipeline:
                - normalize: {}
            """, model: "  seg_test: {scales: [0.5, 1.0]}"),
            Does.Contain("model.seg_test.scales [0.5, 1] scale the resize step of data.test_pipeline, which has none"));
    }

    /// <summary>
    /// Detection's test pipeline may pad (its boxes are mapped back through the content size); several test scales
    /// (`vim test --tta` with model.det_test.scales) scale its one resize, and without one they are refused naming both keys.
    /// </summary>
    [Test]
    public void DetectionTestPipelinesMayPadAndTheirScalesNeedOneResize()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = _files.PathOf("coco"), TrainImages = 2, ValImages = 1, Width = 64, Height = 64, Seed = 2 });
        var (padded, _) = PipelineConfig("""
              test_pipeline:
                - resize: {scales: [[48, 48]]}
                - normalize: {}
                - pad: {size: [48, 48]}
            """, model: "  det_test: {scales: [0.5, 1.0], flip: true}", detection: true);
        var data = new DetectionData(Load(padded));
        // Bound and checked once, when the data was built: every test view (vim test builds them per image) reuses the steps.
        Assert.That(data.TestSteps, Is.Not.Null.And.SameAs(data.TestSteps));
        var sizes = data.TestPipelines().Select(pipeline =>
        {
            var sample = new DataSample(0, "synthetic", new byte[30 * 60 * 3], 30, 60);
            pipeline.Apply(sample, new Random(0));
            return (sample.Height, sample.Width, sample.ContentHeight, sample.ContentWidth);
        });
        // Ratio 0.5 scales the resize to 24² (60×30 → 24×12) and leaves the pad at 48²; ratio 1 fits it into 48² (48×24).
        Assert.That(sizes, Is.EqualTo(new[] { (48, 48, 12, 24), (48, 48, 24, 48) }));
        Assert.That(Refusal("""
              test_pipeline:
                - normalize: {}
            """, model: "  det_test: {scales: [0.8, 1.0, 1.2]}", detection: true),
            Does.Contain("model.det_test.scales [0.8, 1, 1.2] scale the resize step of data.test_pipeline, which has none"));
        // Ratio 1.5 grows the resize to 72², past the pad's fixed 48².
        Assert.That(Refusal("""
              test_pipeline:
                - resize: {scales: [[48, 48]]}
                - normalize: {}
                - pad: {size: [48, 48]}
            """, model: "  det_test: {scales: [1.0, 1.5]}", detection: true),
            Does.Contain("data.test_pipeline[2]: pad to size [48, 48] can receive images up to 72x72 (after data.test_pipeline[0] at model.det_test.scales ratio 1.5)"));
    }

    /// <summary>
    /// `vim infer`'s path, the library API opened from a config and a checkpoint, predicts through data.test_pipeline:
    /// a detector whose test pipeline resizes into 32² (with flip and the scales 0.75 and 1 of model.det_test) equals
    /// <see cref="DetectionInference"/> with the recipe at test size 32 and not at data.crop_size 64; a segmentor whose test
    /// pipeline resizes into (32, 24) equals the recipe segmentor of data.scale [32, 24], not of the config's [64, 64].
    /// </summary>
    [Test]
    public void TheDetectorAndSegmentorApiPredictThroughTheConfiguredTestPipeline()
    {
        var image = PredictorTestKit.WriteImage(_files.PathOf("scene.png"), 80, 48);
        Directory.CreateDirectory(_files.PathOf("coco"));
        var detectionConfig = _files.WriteText("det.yaml", $$"""
            task: detection
            data: {type: coco, root: {{_files.PathOf("coco")}}, crop_size: [64, 64], batch_size: 1, num_workers: 0}
            model:
              num_classes: 3
              backbone: {name: vimdet_tiny, img_size: 64, drop_path_rate: 0.0, pretrained: null}
              det_head: {rpn_pre_nms_topk_test: 200, rpn_post_nms_topk_test: 50, box_head_conv_dims: [16], box_head_fc_dims: [32], mask_head_conv_dims: [16, 16]}
            """);
        var loaded = Load(detectionConfig);
        using var detectorModel = DetectionTask.FromConfig(loaded);
        var detectorCheckpoint = _files.PathOf("det.safetensors");
        PredictorTestKit.SaveCheckpoint(detectorCheckpoint, detectorModel, loaded);
        var test = new DetectionTestConfig { Flip = true, Scales = [0.75, 1.0] };
        using (var detector = Vim.Detection.Detector.Load(detectionConfig, detectorCheckpoint, new Vim.Core.Engine.ModelLoadOptions
        {
            Overrides = ["data.test_pipeline=[{resize: {scales: [[32, 32]], resampling: pillow_bilinear}}, {normalize: {}}]",
                "model.det_test.flip=true", "model.det_test.scales=[0.75, 1.0]"],
        }))
        {
            var found = detector.Predict(image);
            using var scope = NewDisposeScope();
            var at32 = DetectionInference.Predict(detectorModel, image, 32, test);
            var at64 = DetectionInference.Predict(detectorModel, image, 64, test);
            Assert.That(found.Detections, Has.Count.EqualTo(at32.Count).And.Count.GreaterThan(0));
            var boxes = at32.Boxes.Tensor.data<float>().ToArray();
            var detectionScores = at32.Scores!.data<float>().ToArray();
            for (int i = 0; i < found.Detections.Count; i++)
            {
                var d = found.Detections[i];
                Assert.That(new[] { d.X1, d.Y1, d.X2, d.Y2, d.Score },
                    Is.EqualTo(new[] { boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], detectionScores[i] }),
                    $"detection {i}");
            }
            Assert.That(at64.Boxes.Tensor.data<float>().ToArray(), Is.Not.EqualTo(boxes), "data.crop_size's test size gives other boxes");
        }

        var segmentationConfig = _files.WriteText("seg.yaml", $$"""
            task: segmentation
            data: {type: ade20k, root: {{_files.Root}}, crop_size: [64, 64], scale: [64, 64], batch_size: 1, num_workers: 0}
            model:
              num_classes: 3
              backbone: {name: vimseg_tiny, img_size: 64, drop_path_rate: 0.0, pretrained: null}
              seg_head: {channels: 16, auxiliary_channels: 16}
              seg_test: {mode: whole}
            """);
        var segmentationLoaded = Load(segmentationConfig);
        using var segmentorModel = EncoderDecoder.FromConfig(segmentationLoaded, seed: 7);
        var segmentorCheckpoint = _files.PathOf("seg.safetensors");
        PredictorTestKit.SaveCheckpoint(segmentorCheckpoint, segmentorModel, segmentationLoaded);
        using var configured = Segmentor.Load(segmentationConfig, segmentorCheckpoint, new Vim.Core.Engine.ModelLoadOptions
        {
            Overrides = ["data.test_pipeline=[{resize: {scales: [[32, 24]]}}, {normalize: {}}]"],
        });
        string[] names = ["class 0", "class 1", "class 2"];
        using var recipe = new Segmentor(segmentorModel, [32, 24], segmentationLoaded.Model.SegTest, names);
        using var atDataScale = new Segmentor(segmentorModel, [64, 64], segmentationLoaded.Model.SegTest, names);
        var scores = ScoreRequest.For(0, 1, 2);
        var predicted = configured.Predict(image, scores);
        Assert.That((predicted.Height, predicted.Width), Is.EqualTo((48, 80)));
        Assert.That(predicted.Scores!.Values, Is.EqualTo(recipe.Predict(image, scores).Scores!.Values));
        Assert.That(predicted.Scores.Values, Is.Not.EqualTo(atDataScale.Predict(image, scores).Scores!.Values), "data.scale's test view gives other scores");
    }

    /// <summary>
    /// Test steps built in code reach the predictors' public constructors without a config, and get the config's refusals
    /// there: no normalize, a training-only step, a random resize.
    /// </summary>
    [Test]
    public void TestStepsBuiltInCodeAreCheckedByThePredictorsConstructors()
    {
        List<TransformStepConfig> Steps(params TransformStepConfig[] steps) => [.. steps];
        var resize = new TransformStepConfig { Resize = new ResizeOptions { Scales = [[64, 48]] } };
        var normalize = new TransformStepConfig { Normalize = new NormalizeOptions() };
        var flip = new TransformStepConfig { RandomFlip = new RandomFlipOptions { Prob = 0.5 } };
        var randomResize = new TransformStepConfig { Resize = new ResizeOptions { Scales = [[64, 48]], RatioRange = [0.5, 2.0] } };

        using var detectorModel = Vim.Tests.Detection.InferCommandTests.TinyDetector();
        var categories = Vim.Tests.Detection.InferCommandTests.DemoCategories();
        Assert.That(() => new Detector(detectorModel, categories, 64, testPipeline: Steps(resize)),
            Throws.TypeOf<VimException>().With.Message.Contains("data.test_pipeline").And.Message.Contains("normalize"));
        Assert.That(() => new Detector(detectorModel, categories, 64, testPipeline: Steps(flip, resize, normalize)),
            Throws.TypeOf<VimException>().With.Message.Contains("data.test_pipeline[0]: random_flip cannot be a test step"));
        using (new Detector(detectorModel, categories, 64, testPipeline: Steps(resize, normalize))) { }

        var segConfig = Vim.Tests.Segmentation.SegmentationTaskTests.ConfigAt(_files.Root);
        using var segmentorModel = Vim.Tests.Segmentation.SegmentationTaskTests.TinyModel();
        var names = DemoDatasetGenerator.ClassNames.ToList();
        Assert.That(() => new Segmentor(segmentorModel, segConfig.Data.Scale, segConfig.Model.SegTest, names, testPipeline: Steps(randomResize, normalize)),
            Throws.TypeOf<VimException>().With.Message.Contains("data.test_pipeline[0]: resize with ratio_range draws a size at random"));
        using (new Segmentor(segmentorModel, segConfig.Data.Scale, segConfig.Model.SegTest, names, testPipeline: Steps(resize, normalize))) { }
    }

    /// <summary>
    /// `vim train` end to end with explicit pipelines: the demo UperNet config with data.train_pipeline (a 32×32 crop without
    /// photometric distortion) and data.test_pipeline trains 2 iterations with finite losses and evaluates; the work dir's
    /// config.yaml keeps both pipelines, and reads back to the same steps.
    /// </summary>
    [Test]
    public void TheDemoConfigTrainsAndEvaluatesWithExplicitPipelines()
    {
        var root = GenerateAde();
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        const string train = "data.train_pipeline=[{resize: {scales: [[64, 48]], ratio_range: [0.75, 1.25]}}, {random_crop: {height: 32, width: 32}}, " +
            "{random_flip: {prob: 0.5}}, {normalize: {}}, {pad: {size: [32, 32]}}]";
        const string test = "data.test_pipeline=[{resize: {scales: [[64, 48]]}}, {normalize: {}}]";
        var config = Load(configPath,
            $"data.root={root}", "data.crop_size=[32,32]", "data.batch_size=2", "data.num_workers=0", "schedule.max_iters=2", "schedule.warmup_iters=1",
            "train.log_interval=1", "train.eval_interval=2", "train.checkpoint_interval=2", train, test);
        var dir = _files.PathOf("work");
        var result = TrainCommand.Train(config, dir, null, SingleProcessCommunicator.Instance, CancellationToken.None);
        Assert.That(result.Iteration, Is.EqualTo(2));
        var records = Vim.Core.Engine.JsonLinesLog.Read(Path.Combine(dir, "log.jsonl")).ToList();
        var losses = records.Where(r => r.Has("loss")).Select(r => r.Number("loss")).ToList();
        Assert.That(losses, Has.Count.EqualTo(2));
        Assert.That(losses, Is.All.Matches<double>(double.IsFinite));
        Assert.That(records.Any(r => r.IsEvaluation && r.Has("mIoU")), "evaluated through the test pipeline");

        var saved = Load(Path.Combine(dir, "config.yaml"));
        var steps = DataPipelines.TrainSteps(saved)!;
        Assert.That(steps.Select(s => s.RandomCrop?.Height), Is.EqualTo(new int?[] { null, 32, null, null, null }));
        Assert.That(steps[0].Resize!.RatioRange, Is.EqualTo(new[] { 0.75, 1.25 }));
        Assert.That(DataPipelines.TestSteps(saved)!.Select(s => s.Resize?.Scales[0]), Is.EqualTo(new[] { new[] { 64, 48 }, null }));
    }
}
