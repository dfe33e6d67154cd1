using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Transforms;
using Vim.Detection;
using Vim.Tools.Commands;

namespace Vim.Tests.Data;

/// <summary>
/// The multi-scale steps in experiment configs (<see cref="DataPipelines"/>): DETR's RandomChoice pipeline with an
/// absolute_range crop runs on detection data and `vim data browse` draws it, a resize_shortest_edge test step and its TTA
/// scales give detectron2's sizes, and bad random_choice sub-steps are refused naming their own file line and nested key.
/// </summary>
public class MultiScalePipelineConfigTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>A detection config on demo COCO data of 80×64 images under &lt;root&gt;/coco; <paramref name="data"/> ends the data section.</summary>
    private string DetectionConfig(string data, string model = "", string task = "detection")
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = _files.PathOf("coco"), TrainImages = 4, ValImages = 2, Width = 80, Height = 64, Seed = 2 });
        return _files.WriteText("config.yaml", string.Join('\n', [
            $"task: {task}", "runtime: {seed: 3}", "model:", $"  num_classes: {DemoDatasetGenerator.ClassNames.Count}", model,
            "data:", "  num_workers: 0", task == "detection" ? "  type: coco" : "  type: ade20k", $"  root: {_files.PathOf("coco")}",
            "  train_split: train", "  val_split: val", "  crop_size: [48, 48]", "  batch_size: 1", data]) + "\n");
    }

    private static ExperimentConfig Load(string path) => ExperimentConfig.Load(path, []).Config;

    /// <summary>
    /// mmdet's DETR augmentation at the demo's size: flip, then either a keep-ratio resize of one of three short edges, or a
    /// resize, an absolute_range crop of 24..40 with allow_negative_crop, and the resize again. An 80×64 image fitted into
    /// (96, s) takes factor s/64 (below 96/80), and a crop of at most 40×24's aspect into (96, s) also its short side to s,
    /// so every sample's short side is one of 40, 48, 56; square-ish crops come only from the crop branch.
    /// </summary>
    [Test]
    public void DetrsRandomChoicePipelineRunsOnDetectionDataAndDataBrowseDrawsIt()
    {
        var path = DetectionConfig("""
              train_pipeline:
                - random_flip: {prob: 0.5}
                - random_choice:
                    transforms:
                      - - resize: {scales: [[96, 40], [96, 48], [96, 56]]}
                      - - resize: {scales: [[96, 40], [96, 50], [96, 60]]}
                        - random_crop: {crop_type: absolute_range, size_range: [24, 40], allow_negative_crop: true}
                        - resize: {scales: [[96, 40], [96, 48], [96, 56]]}
                - normalize: {}
              test_pipeline:
                - resize_shortest_edge: {short_edge_length: 48, max_size: 80}
                - normalize: {}
            """);
        var config = Load(path);
        var samples = new DetectionData(config).TrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(0, endless: true).Take(24).ToList();
        Assert.That(samples.Select(s => Math.Min(s.Height, s.Width)), Is.All.AnyOf(40, 48, 56));
        Assert.That(samples.Count(s => (double)s.Width / s.Height == 80.0 / 64), Is.InRange(1, 23), "both sub-pipelines ran");
        foreach (var s in samples)
            for (int k = 0; k < s.Boxes.Length; k += 4)
                Assert.That(s.Boxes[k] >= 0 && s.Boxes[k + 2] <= s.Width && s.Boxes[k + 1] >= 0 && s.Boxes[k + 3] <= s.Height && s.Boxes[k + 2] > s.Boxes[k],
                    $"{s.FilePath}: box {k / 4} inside its {s.Width}x{s.Height} sample");

        var drawn = DataBrowseCommand.Browse(config, training: true, count: 4, epoch: 0, _files.PathOf("train"), TextWriter.Null);
        Assert.That(drawn, Has.Count.EqualTo(4));
        // detectron2's test size of 64×80 at short edge 48, max 80: 48 × 60.
        foreach (var file in DataBrowseCommand.Browse(config, training: false, count: 2, epoch: 0, _files.PathOf("val"), TextWriter.Null))
        {
            using var png = Cv2.ImRead(file, ImreadModes.Color);
            Assert.That((png.Rows, png.Cols), Is.EqualTo((48, 60)), file);
        }
    }

    /// <summary>
    /// A resize_shortest_edge test step scales with model.det_test.scales as a resize does: a 30×60 image at short 32, max 48
    /// is 32 × 64, over 48, so × ¾: 24 × 48; at ratio ½ short 16, max 24: 16 × 32 × ¾ = 12 × 24.
    /// </summary>
    [Test]
    public void AShortestEdgeTestStepScalesWithTheTestRatios()
    {
        var path = DetectionConfig("""
              test_pipeline:
                - resize_shortest_edge: {short_edge_length: 32, max_size: 48}
                - normalize: {}
            """, model: "  det_test: {scales: [0.5, 1.0]}");
        var data = new DetectionData(Load(path));
        var sizes = data.TestPipelines().Select(pipeline =>
        {
            var sample = new DataSample(0, "synthetic", new byte[30 * 60 * 3], 30, 60);
            pipeline.Apply(sample, new Random(0));
            return (sample.Height, sample.Width);
        });
        Assert.That(sizes, Is.EqualTo(new[] { (12, 24), (24, 48) }));
    }

    private string Refusal(string data, string task = "detection")
    {
        var path = DetectionConfig(data, task: task);
        var error = Assert.Throws<VimException>(() => DataPipelines.Check(Load(path)))!;
        Assert.That(error.Message, Does.Contain(path), "the file is named");
        return error.Message;
    }

    private int LineOf(string text) => Array.FindIndex(File.ReadAllLines(_files.PathOf("config.yaml")), line => line.Contains(text, StringComparison.Ordinal)) + 1;

    [Test]
    public void BadSubStepsAreRefusedAtTheirOwnLine()
    {
        var message = Refusal("""
              train_pipeline:
                - random_choice:
                    transforms:
                      - - random_flip: {prob: 0.5}
                      - - random_flip: {prob: 3}
                - normalize: {}
            """);
        Assert.That(message, Does.Contain($":{LineOf("prob: 3")}: data.train_pipeline[0].random_choice.transforms[1][0]: RandomFlip prob 3 must be in [0, 1]"));

        message = Refusal("""
              train_pipeline:
                - random_choice:
                    transforms:
                      - - random_flip: {prob: 0.5}
                      - - random_flip: {prob: 0.5}
                        - normalize: {}
                - normalize: {}
            """);
        Assert.That(message, Does.Contain("data.train_pipeline[0].random_choice.transforms[1][1]: normalize cannot be inside random_choice"));

        Assert.That(Refusal("""
              train_pipeline:
                - random_choice: {transforms: [[random_flip: {prob: 0.5}], [resize: {scales: [[96, 40], [96, 56]], multiscale_mode: range}]], prob: [0.5, 0.6]}
                - normalize: {}
            """), Does.Contain("data.train_pipeline[0]: RandomChoice prob [0.5, 0.6] sums to 1.1, not 1"));

        // One sub-pipeline crops to 32×40, the other leaves any size: a fixed pad after them could meet a larger image.
        Assert.That(Refusal("""
              train_pipeline:
                - random_choice:
                    transforms:
                      - [random_crop: {height: 32, width: 40}]
                      - [random_flip: {prob: 0.5}]
                - normalize: {}
                - pad: {size: [32, 40]}
            """), Does.Contain("data.train_pipeline[2]: pad to size [32, 40] can receive images of any size"));
        // Both bound it: the larger of the two, 48×40 (a crop to 40×48, and a resize_shortest_edge capped at 40).
        Assert.That(Refusal("""
              train_pipeline:
                - random_choice:
                    transforms:
                      - [random_crop: {height: 40, width: 48}]
                      - [resize_shortest_edge: {short_edge_length: 30, max_size: 40}]
                - normalize: {}
                - pad: {size: [32, 40]}
            """), Does.Contain("data.train_pipeline[2]: pad to size [32, 40] can receive images up to 48x40 (after data.train_pipeline[0])"));
        Assert.That(() => DataPipelines.Check(Load(DetectionConfig("""
              train_pipeline:
                - random_choice:
                    transforms:
                      - [random_crop: {height: 32, width: 40}]
                      - [resize_shortest_edge: {short_edge_length: 20, max_size: 32}]
                - normalize: {}
                - pad: {size: [32, 40]}
            """))), Throws.Nothing, "both sub-pipelines hand on at most 40×32");

        Assert.That(Refusal("""
              test_pipeline:
                - random_choice: {transforms: [[resize: {scales: [[96, 40]]}], [resize: {scales: [[96, 56]]}]]}
                - normalize: {}
            """), Does.Contain("data.test_pipeline[0]: random_choice cannot be a test step"));
        Assert.That(Refusal("""
              test_pipeline:
                - resize_shortest_edge: {short_edge_length: [40, 48], sample_style: choice}
                - normalize: {}
            """), Does.Contain("data.test_pipeline[0]: resize_shortest_edge with short_edge_length [40, 48] draws a size at random"));
        Assert.That(Refusal("""
              test_pipeline:
                - resize: {scales: [[96, 40], [96, 56]], multiscale_mode: range}
                - normalize: {}
            """), Does.Contain("data.test_pipeline[0]: resize with several scales draws a size at random"));

        // mmdet's RandomResize scale pair with mmseg's ratio_range added: the conflict is what is wrong, not the pair.
        Assert.That(Refusal("""
              train_pipeline:
                - resize: {scales: [[96, 40], [96, 56]], multiscale_mode: range, ratio_range: [0.5, 2.0]}
                - normalize: {}
            """), Does.Contain("data.train_pipeline[0]: Resize multiscale_mode range and ratio_range are two ways to draw the scale; set one of them."));
    }

    /// <summary>
    /// The loader mixes mosaic and mixup samples at the first top-level random_affine; one inside random_choice would run
    /// before the mixing, on every tile, so it is refused at its line naming the mixing key, also when only the switch sets it.
    /// </summary>
    [Test]
    public void RandomAffineInsideRandomChoiceIsRefusedWithMixing()
    {
        const string pipeline = """
              train_pipeline:
                - random_choice: {transforms: [[random_affine: {}], [random_flip: {prob: 0.5}]]}
                - normalize: {}
            """;
        var message = Refusal("  mosaic: {img_scale: [48, 48]}\n" + pipeline);
        Assert.That(message, Does.Contain($":{LineOf("random_affine: {}")}: data.train_pipeline[0].random_choice.transforms[0][0]: random_affine inside random_choice cannot be used with data.mosaic"));
        Assert.That(Refusal("  pipeline_switch: {at: 2, mixup: {img_scale: [48, 48]}}\n" + pipeline),
            Does.Contain("data.train_pipeline[0].random_choice.transforms[0][0]: random_affine inside random_choice cannot be used with data.pipeline_switch.mixup"));
        Assert.That(() => DataPipelines.Check(Load(DetectionConfig(pipeline))), Throws.Nothing, "without mixing it is one more step");
        Assert.That(() => DataPipelines.Check(Load(DetectionConfig("  pipeline_switch: {at: 2, mosaic: {img_scale: [48, 48]}, train_pipeline: [normalize: {}]}\n" + pipeline))),
            Throws.Nothing, "the switch's mosaic runs with the switch's own pipeline, not this one");
    }

    /// <summary>Segmentation's checks reach into sub-pipelines: a crop's ignore index there must be the model's too.</summary>
    [Test]
    public void SegmentationChecksReachIntoSubPipelines()
    {
        Assert.That(Refusal("""
              train_pipeline:
                - random_choice:
                    transforms:
                      - [random_flip: {prob: 0.5}]
                      - [random_crop: {height: 32, width: 40, ignore_index: 0}]
                - normalize: {}
            """, task: "segmentation"),
            Does.Contain("data.train_pipeline[0].random_choice.transforms[1][0]: random_crop's ignore_index is 0, but model.seg_head.ignore_index is 255"));
        Assert.That(Refusal("""
              train_pipeline:
                - random_choice: {transforms: [[random_affine: {}], [random_flip: {prob: 0.5}]]}
                - normalize: {}
            """, task: "segmentation"), Does.Contain($":{LineOf("random_affine: {}")}: data.train_pipeline[0].random_choice.transforms[0][0]: random_affine is a detection step"),
            "a step written in a flow list ([random_affine: {}]) is named at its own line");
    }
}
