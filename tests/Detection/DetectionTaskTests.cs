using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Data.Coco;
using Vim.Data.Demo;
using Vim.Data.Evaluation;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Detection.Ops;
using Vim.Tools;
using Vim.Tools.Commands;
using Vim.Tests.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>Detection through the shared trainer on a tiny generated COCO-format dataset.</summary>
public class DetectionTaskTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = CreateDemoRoot("vimdense-dettask-");

    /// <summary>A new temp folder with the tiny demo COCO data under coco/ (6 training and 3 validation images of 64²), for <see cref="ConfigAt"/>.</summary>
    internal static string CreateDemoRoot(string prefix)
    {
        var root = Directory.CreateTempSubdirectory(prefix).FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = Path.Combine(root, "coco"), TrainImages = 6, ValImages = 3, Width = 64, Height = 64, Seed = 3,
        });
        return root;
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private ExperimentConfig Config() => ConfigAt(_root);

    /// <summary>Detection on the demo COCO data generated under &lt;root&gt;/coco, at 64² (shared with other tests of the tiny detector).</summary>
    internal static ExperimentConfig ConfigAt(string root) => new()
    {
        Task = TaskKind.Detection,
        Data = new DataConfig { Type = "coco", Root = Path.Combine(root, "coco"), TrainSplit = "train", ValSplit = "val", CropSize = [64, 64], BatchSize = 2, NumWorkers = 0 },
        Model = new ModelConfig { NumClasses = DemoDatasetGenerator.ClassNames.Count },
        Optimizer = new OptimizerConfig { Lr = 1e-3 },
        Schedule = new ScheduleConfig { MaxIters = 4, WarmupIters = 1 },
        Train = new TrainConfig { EvalInterval = 4, CheckpointInterval = 4, LogInterval = 2 },
    };

    internal static CascadeMaskRcnn TinyDetector() => TinyDetector(roi => roi);

    /// <summary>The tiny detector with its RoI-head settings changed by <paramref name="adjust"/> (e.g. Mask R-CNN's one class-specific stage).</summary>
    internal static CascadeMaskRcnn TinyDetector(Func<CascadeRoiHeadsSettings, CascadeRoiHeadsSettings> adjust)
    {
        var net = new VisionMamba(VimVariants.DetTiny with { EmbedDim = 32, Depth = 2, ImageSize = 64, DropPathRate = 0 }, 1);
        var roi = adjust(new CascadeRoiHeadsSettings
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count, BatchSizePerImage = 16, BoxHeadConvDims = [16], BoxHeadFcDims = [32],
            MaskHeadConvDims = [16, 16, 16, 16, 16],
        });
        var rpn = new RpnSettings { BatchSizePerImage = 32, PreNmsTopKTrain = 200, PostNmsTopKTrain = 50, PreNmsTopKTest = 200, PostNmsTopKTest = 50 };
        return new CascadeMaskRcnn(new SimpleFeaturePyramid(net, outChannels: 16, seed: 2), roi, rpn, seed: 3);
    }

    [Test]
    public void TrainsEvaluatesBoxAndMaskApAndTheCheckpointReproducesThem()
    {
        var config = Config();
        var workDir = Path.Combine(_root, "work");
        IReadOnlyDictionary<string, double> logged;
        using (var task = new DetectionTask(config, TextWriter.Null, TinyDetector))
        {
            Assert.That(task.NumBackboneLayers, Is.EqualTo(2));
            var result = new Trainer<Batch>(task, config, workDir, "cfg", TextWriter.Null).Run(null);
            Assert.That(result.Iteration, Is.EqualTo(4));
            logged = task.Evaluate();
        }
        // mmdet's metric items for both types, each the COCO stat of its position in percent.
        string[] items = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"];
        Assert.That(logged.Keys, Is.EquivalentTo(items.Select(i => "bbox_" + i).Concat(items.Select(i => "segm_" + i))));
        foreach (var (name, value) in logged) Assert.That(value, Is.InRange(-1.0, 100.0), name);

        using var fresh = new DetectionTask(config, TextWriter.Null, TinyDetector);
        using (var file = CheckpointFile.Load(Path.Combine(workDir, "iter_0000004.safetensors")))
            StateDictLoader.Load(fresh.Model, file.StateDict("model"));
        var (box, mask, detections) = fresh.EvaluateFull();
        Assert.That(DetectionTask.Metrics((box, mask)), Is.EqualTo(logged), "the saved checkpoint reproduces the metrics");
        for (int i = 0; i < items.Length; i++)
        {
            Assert.That(logged["bbox_" + items[i]], Is.EqualTo(box.Stats[i] < 0 ? -1 : 100 * box.Stats[i]).Within(1e-9), items[i]);
            Assert.That(logged["segm_" + items[i]], Is.EqualTo(mask!.Stats[i] < 0 ? -1 : 100 * mask.Stats[i]).Within(1e-9), items[i]);
        }
        Assert.That(detections, Is.Not.Empty, "an untrained head still scores above the 0.05 threshold");
        var categoryIds = DemoDatasetGenerator.CategoryIds.ToHashSet();
        Assert.That(detections.Select(d => d.CategoryId), Has.All.Matches<long>(categoryIds.Contains), "results use the dataset's category ids");
        Assert.That(detections.Where(d => d.Segmentation is not null).Count(), Is.EqualTo(detections.Count));
    }

    /// <summary>
    /// detectron2's mask AP: a detection's area is its mask's. Hand-computed: one 100×100 image, ground truth a 20×20
    /// square (area 400, small). The true positive (score 0.8) is that square; a false positive (0.9) has a 10×10 mask
    /// (area 100, small) but a 60×60 box (3600, medium). With mask areas the false positive counts among the small
    /// detections, ahead of the true one: precision 1/2 at every recall point, AP_small = 0.5. With box areas
    /// (pycocotools given the boxes) it is ignored there and AP_small = 1. AP over all areas is 0.5 either way.
    /// </summary>
    [Test]
    public void MaskApRangesUseEachDetectionsMaskArea()
    {
        static CocoSegmentation Square(double x, double y, double side) => CocoSegmentation.FromPolygons([[x, y, x + side, y, x + side, y + side, x, y + side]]);
        var groundTruth = new CocoDataset([new CocoImage(1, 100, 100, null)],
            [new CocoAnnotation(1, 1, 1, [10, 10, 20, 20], 400, false, Square(10, 10, 20))], [new CocoCategory(1, "square", null)]);
        var detections = new List<CocoDetection>
        {
            new(1, 1, 0.8, [10, 10, 20, 20], Square(10, 10, 20)),
            new(1, 1, 0.9, [40, 40, 60, 60], Square(60, 60, 10)),
        };
        var masks = DetectionTask.EvaluateMasks(groundTruth, detections);
        Assert.That(masks.Stats[0], Is.EqualTo(0.5).Within(1e-12), "AP");
        Assert.That(masks.Stats[3], Is.EqualTo(0.5).Within(1e-12), "AP_small");
        Assert.That(masks.Stats[4], Is.EqualTo(-1), "AP_medium: no ground truth");
        var withBoxes = new CocoEvaluator(groundTruth, detections, CocoIouType.Segm).Run();
        Assert.That(withBoxes.Stats[3], Is.EqualTo(1.0).Within(1e-12), "pycocotools with boxes: the false positive is medium");
    }

    /// <summary>
    /// Evaluation reads ground-truth masks from the annotation file, so validation samples carry none (decoding and
    /// resizing them would be wasted on every evaluation); training samples carry theirs.
    /// </summary>
    [Test]
    public void OnlyTrainingSamplesCarryMasks()
    {
        using var task = new DetectionTask(Config(), TextWriter.Null, TinyDetector);
        Assert.That(Enumerable.Range(0, task.TrainSet.Count).Select(i => task.TrainSet.Load(i).Masks), Has.All.Not.Null);
        Assert.That(Enumerable.Range(0, task.ValSet.Count).Select(i => task.ValSet.Load(i).Masks), Has.All.Null);
    }

    /// <summary>
    /// runtime.amp on the CPU: the trainer runs the task's losses inside a bf16 autocast region, so the pyramid
    /// reaches the RoI heads in bf16. The whole forward and backward must run and give finite losses and gradients.
    /// </summary>
    [Test]
    public void ForwardAndBackwardRunUnderBf16Autocast()
    {
        using var task = new DetectionTask(Config(), TextWriter.Null, TinyDetector);
        using var data = task.OpenTrainingData(1, DataPosition.Start, DataShard.Whole);
        using var scope = NewDisposeScope();
        using var batch = data.Next();
        task.Model.train();
        manual_seed(4);
        IReadOnlyDictionary<string, Tensor> losses;
        using (new Autocast(DeviceType.CPU, ScalarType.BFloat16))
            losses = task.Losses(batch);
        var total = losses.Where(t => TrainingTerms.IsLoss(t.Key)).Select(t => t.Value).Aggregate((a, b) => a + b);
        Assert.That(double.IsFinite(total.ToDouble()), Is.True, string.Join(", ", losses.Select(l => $"{l.Key}={l.Value.ToDouble()}")));
        total.backward();
        var parameters = task.Model.named_parameters().ToList();
        foreach (var (name, p) in parameters.Where(p => p.parameter.grad is not null))
        {
            Assert.That(p.grad!.dtype, Is.EqualTo(p.dtype), $"{name}: gradients of fp32 weights come back fp32");
            Assert.That(p.grad.isfinite().all().item<bool>(), Is.True, $"{name}: finite gradient");
        }
        // The gradient crosses the bf16 RoIAlign back into the pyramid and the backbone.
        Assert.That(parameters.Where(p => p.name.Contains("net.", StringComparison.Ordinal) && p.parameter.grad is not null)
            .Sum(p => p.parameter.grad!.abs().sum().ToDouble()), Is.GreaterThan(0));
        Assert.That(parameters.Where(p => p.name.Contains("mask", StringComparison.Ordinal) && p.parameter.grad is not null)
            .Sum(p => p.parameter.grad!.abs().sum().ToDouble()), Is.GreaterThan(0), "the mask head, fed by RoIAlign, learns");

        // Boxes are decoded from the bf16 deltas in float32: detections are not rounded to bf16's 8 significant bits.
        task.Model.eval();
        using (no_grad())
        using (new Autocast(DeviceType.CPU, ScalarType.BFloat16))
        {
            var found = task.Detector.Predict(batch.Images.narrow(0, 0, 1), [(64, 64)], [(640, 640)])[0];
            Assert.That(found.Count, Is.GreaterThan(0));
            Assert.That(found.Boxes.Tensor.dtype, Is.EqualTo(ScalarType.Float32));
        }
    }

    /// <summary>
    /// model.backbone.pretrained names a file that has since gone: a fresh run stops with the missing-file error, but
    /// a resume does not read it (the checkpoint holds every weight), says so, and continues from the checkpoint's weights.
    /// </summary>
    [Test]
    public void AResumeSkipsThePretrainedFileAndRestoresTheCheckpointsWeights()
    {
        var config = Config();
        var workDir = Path.Combine(_root, "work");
        ScrambledCheckpoint checkpoint;
        using (var task = new DetectionTask(config, TextWriter.Null, TinyDetector))
            checkpoint = ScrambledCheckpoint.Save(task, config, workDir);
        using var _ = checkpoint;

        var moved = Path.Combine(_root, "moved", "vim_t_midclstok_76p1acc.pth");
        config.Model.Backbone.Pretrained = moved;
        var fresh = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, TinyDetector).Dispose())!;
        Assert.That(fresh.Message, Does.Contain("model.backbone.pretrained").And.Contain(moved).And.Contain("not found"));

        var log = new StringWriter();
        using var resumed = new DetectionTask(config, log, TinyDetector, weightsFromCheckpoint: true);
        Assert.That(resumed.PretrainedReport, Is.Null);
        Assert.That(log.ToString(), Does.Contain(moved).And.Contain("not loaded").And.Contain("checkpoint"));
        Assert.That(checkpoint.DiffersFrom(resumed.Model), Is.True, "the freshly built model differs from the checkpoint");
        using var stopAtOnce = new CancellationTokenSource();
        stopAtOnce.Cancel();
        var result = new Trainer<Batch>(resumed, config, workDir, "cfg", TextWriter.Null).Run(checkpoint.Path, stopAtOnce.Token);
        Assert.That(result.Iteration, Is.EqualTo(0));
        checkpoint.AssertRestoredIn(resumed.Model);
    }

    /// <summary>
    /// The same through `vim train --resume` (TrainCommand.Train) and `vim test` with the demo config's registered detector.
    /// The training runs are stopped before their first iteration: only the wiring of a resume to the task is exercised
    /// here, the restored weights are checked above.
    /// </summary>
    [Test]
    public void ResumeAndTestThroughTheCliNeedNoPretrainedFile()
    {
        var dir = Path.Combine(_root, "work");
        var moved = Path.Combine(_root, "moved", "vim_t_midclstok_76p1acc.pth");
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        string[] Overrides(string? pretrained, int batch = 2) =>
            [$"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[64,64]", "data.num_workers=0", $"model.backbone.pretrained={pretrained ?? "null"}",
             $"data.batch_size={batch}"];
        ExperimentConfig Load(string? pretrained, int batch = 2) => ExperimentConfig.Load(configPath, Overrides(pretrained, batch)).Config;
        using var stopAtOnce = new CancellationTokenSource();
        stopAtOnce.Cancel();
        var first = TrainCommand.Train(Load(null), dir, null, SingleProcessCommunicator.Instance, stopAtOnce.Token);
        Assert.That(first.LastCheckpoint, Is.Not.Null);

        var freshError = Assert.Throws<VimException>(() =>
            TrainCommand.Train(Load(moved), Path.Combine(_root, "fresh"), null, SingleProcessCommunicator.Instance, stopAtOnce.Token))!;
        Assert.That(freshError.Message, Does.Contain(moved).And.Contain("not found"));

        // A training split (6 images) too small for the batch: refused before the model is built or the (missing)
        // pretrained file read, fresh or resumed, leaving the work dir without a config; on a rank of 2 processes too.
        var small = Path.Combine(_root, "small");
        var smallError = Assert.Throws<VimException>(() =>
            TrainCommand.Train(Load(moved, batch: 7), small, null, SingleProcessCommunicator.Instance, stopAtOnce.Token))!;
        Assert.That(smallError.Message, Does.StartWith("data.batch_size is 7, but the training split 'train' under data.root").And.Contain("6 image(s)"));
        Assert.That(File.Exists(Path.Combine(small, "config.yaml")), Is.False);
        smallError = Assert.Throws<VimException>(() =>
            TrainCommand.Train(Load(moved, batch: 7), dir, first.LastCheckpoint, SingleProcessCommunicator.Instance, stopAtOnce.Token))!;
        Assert.That(smallError.Message, Does.Contain("data.batch_size is 7"));
        smallError = Assert.Throws<VimException>(() =>
            TrainCommand.Train(Load(moved, batch: 4), small, null, new SecondOfTwoRanks(), stopAtOnce.Token))!;
        Assert.That(smallError.Message, Does.Contain("data.batch_size is 4 per process with 2 processes").And.Contain("(3 per process)"));

        var console = new StringWriter();
        var original = Console.Out;
        Console.SetOut(console);
        TrainingResult resumed;
        try
        {
            resumed = TrainCommand.Train(Load(moved), dir, first.LastCheckpoint, SingleProcessCommunicator.Instance, stopAtOnce.Token);
        }
        finally
        {
            Console.SetOut(original);
        }
        Assert.That(resumed.Interrupted, Is.True);
        Assert.That(console.ToString(), Does.Contain(moved).And.Contain("not loaded").And.Contain($"resumed from {first.LastCheckpoint}"));

        // `vim test` loads the whole model from its checkpoint too, so it needs no pretrained file either, and it evaluates
        // whatever the training split holds (a score threshold of 1 keeps the untrained detector's evaluation short: no
        // detections to paste).
        var errors = new StringWriter();
        var testDir = Path.Combine(_root, "test");
        int exit = VimCli.Run(["test", configPath, "--checkpoint", first.LastCheckpoint!, "--out", testDir, "--overlays", "2", "--error-analysis",
            .. Overrides(moved, batch: 7).Append("model.det_head.test_score_threshold=1.0").SelectMany(o => new[] { "--set", o })], errors);
        Assert.That(exit, Is.EqualTo(0), errors.ToString());
        Assert.That(File.Exists(Path.Combine(testDir, "metrics.json")), Is.True);
        // --overlays draws the first images that hold an object.
        using var task = new DetectionTask(Load(null), TextWriter.Null, TinyDetector);
        var expected = task.ValSet.ImagesWithObjects().Take(2).Select(i => Path.ChangeExtension(i.FileName!, ".png")).ToList();
        Assert.That(expected, Is.Not.Empty);
        Assert.That(Directory.EnumerateFiles(Path.Combine(testDir, "overlays")).Select(Path.GetFileName), Is.EquivalentTo(expected));

        // With no detection kept, the box confusion matrix counts every ground truth as missed (crowds included, as mmdet
        // 3; boxes mmdet's CocoDataset drops left out), and box AP's summary links it.
        var (_, columns, rows, counts) = Eval.ConfusionCsv.Read(Path.Combine(testDir, "confusion_matrix.csv"));
        Assert.That(columns, Is.EqualTo(task.ValSet.Categories.Names.Append("background")));
        Assert.That(rows, Is.EqualTo(columns));
        var images = task.ValSet.Coco.ImagesById;
        var missed = new long[columns.Length];
        foreach (var a in task.ValSet.Coco.Annotations)
        {
            var (b, image) = (a.Bbox!, images[a.ImageId]);
            bool overlaps = Math.Min(b[0] + b[2], image.Width) > Math.Max(b[0], 0) && Math.Min(b[1] + b[3], image.Height) > Math.Max(b[1], 0);
            if (overlaps && b[2] >= 1 && b[3] >= 1 && !(a.Area <= 0)) missed[task.ValSet.Categories.ToClassIndex(a.CategoryId)]++;
        }
        Assert.That(missed.Sum(), Is.GreaterThan(0));
        for (int t = 0; t < rows.Length; t++)
            for (int p = 0; p < columns.Length; p++)
                Assert.That(counts[t, p], Is.EqualTo(p == columns.Length - 1 ? missed[t] : 0), $"[{rows[t]}, {columns[p]}]");
        Assert.That(File.ReadAllText(Path.Combine(testDir, "bbox", "summary.md")), Does.Contain("](../confusion_matrix.png)").And.Contain("](../confusion_matrix.csv)"));

        // --error-analysis, for boxes and (the demo config has a mask head) masks, linked from each summary. With no
        // detection, nothing is found at any stage up to BG (AP 0); FN forgives the misses: 100.
        foreach (var type in new[] { "bbox", "segm" })
        {
            Assert.That(File.ReadAllText(Path.Combine(testDir, type, "summary.md")), Does.Contain("## Error analysis").And.Contain("](errors/summary.md)"), type);
            using var analysis = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(testDir, type, "errors", "errors.json")));
            Assert.That(analysis.RootElement.GetProperty("iou_type").GetString(), Is.EqualTo(type));
            var overall = analysis.RootElement.GetProperty("overall").GetProperty("all").GetProperty("ap");
            foreach (var stage in new[] { "C75", "C50", "Loc", "Sim", "Oth", "BG" }) Assert.That(overall.GetProperty(stage).GetDouble(), Is.EqualTo(0), $"{type} {stage}");
            Assert.That(overall.GetProperty("FN").GetDouble(), Is.EqualTo(100), type);
            Assert.That(analysis.RootElement.GetProperty("categories").EnumerateArray().Select(c => c.GetProperty("name").GetString()),
                Is.EqualTo(task.ValSet.Categories.Names), type);
        }
    }

    /// <summary>A constructor that throws after building the model (here: the pretrained file is missing) disposes it.</summary>
    [Test]
    public void AFailedConstructionDisposesTheModelItBuilt()
    {
        var config = Config();
        config.Model.Backbone.Pretrained = Path.Combine(_root, "absent.pth");
        var built = new List<Tensor>();
        CascadeMaskRcnn Tracked()
        {
            var model = TinyDetector();
            built.AddRange(model.parameters());
            built.AddRange(model.buffers());
            return model;
        }
        Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, Tracked).Dispose());
        Assert.That(built, Has.Count.GreaterThan(10));
        Assert.That(built.Where(t => !t.IsInvalid).Count(), Is.Zero, "every parameter and buffer of the model is disposed");
    }

    /// <summary>
    /// A model.det_head the heads cannot be built from (a mask head without layers) or a class count of 0 fails FromConfig:
    /// the first is named before anything is built, the second is refused by the cascade heads after the registered
    /// backbone, its pyramid and the RPN exist. Either way the error names the key, and none of the tensors built
    /// outlives the failure (the thread's live-tensor count, which counts every tensor created minus every one disposed).
    /// </summary>
    [Test]
    public void FromConfigWithAnUnbuildableHeadNamesTheKeyAndFreesWhatItBuilt()
    {
        var config = Config();
        config.Model.Backbone.Name = "vimdet_tiny";
        config.Model.DetHead.MaskHeadConvDims = [];
        // Built inside a dispose scope, which frees the temporaries of weight initialisation (TorchSharp's own modules leave
        // some to the GC) but not parameters and buffers, which modules take out of the scope: those only Dispose frees.
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        VimException? error;
        using (NewDisposeScope())
            error = Assert.Throws<VimException>(() => DetectionTask.FromConfig(config).Dispose());
        Assert.That(error!.Message, Does.Contain("model.det_head.mask_head_conv_dims").And.Contain("[]"));
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.Zero, "live tensors left by the failed build");

        // No classes: the cascade heads refuse to build after the RPN exists.
        config.Model.DetHead.MaskHeadConvDims = [8, 8];
        config.Model.NumClasses = 0;
        using (NewDisposeScope())
            error = Assert.Throws<VimException>(() => DetectionTask.FromConfig(config).Dispose());
        Assert.That(error!.Message, Does.Contain("model.num_classes").And.Contain("got 0"));
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.Zero, "live tensors left by the failed build");
        config.Model.NumClasses = DemoDatasetGenerator.ClassNames.Count;

        // The count sees a built detector's tensors, and disposing it frees them all: the checks above can fail.
        using (NewDisposeScope())
        using (var built = DetectionTask.FromConfig(config))
            Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.GreaterThan(100));
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.Zero);
    }

    /// <summary>Head settings that would leave the detector without proposals or detections, or are no probability, name their key.</summary>
    [TestCase("detections_per_image", "model.det_head.detections_per_image must be at least 1, got 0")]
    [TestCase("rpn_post_nms_topk_test", "model.det_head.rpn_post_nms_topk_test must be at least 1, got 0")]
    [TestCase("test_nms_threshold", "model.det_head.test_nms_threshold must be within [0, 1], got 1.5")]
    [TestCase("test_score_threshold", "model.det_head.test_score_threshold must be within [0, 1], got -0.1")]
    [TestCase("test_soft_nms_sigma", "model.det_head.test_soft_nms_sigma must be a positive number (σ of Soft-NMS's gaussian decay exp(-IoU²/σ), e.g. 0.5), got 0")]
    [TestCase("test_soft_nms_min_score", "model.det_head.test_soft_nms_min_score must be within [0, 1) (the decayed score below which Soft-NMS drops a box, e.g. 0.001), got 1")]
    public void UnusableHeadSettingsNameTheirKey(string key, string expected)
    {
        var config = Config();
        config.Model.Backbone.Name = "vimdet_tiny";
        var head = config.Model.DetHead;
        switch (key)
        {
            case "detections_per_image": head.DetectionsPerImage = 0; break;
            case "rpn_post_nms_topk_test": head.RpnPostNmsTopkTest = 0; break;
            case "test_nms_threshold": head.TestNmsThreshold = 1.5; break;
            case "test_soft_nms_sigma": head.TestSoftNmsSigma = 0; break;
            case "test_soft_nms_min_score": head.TestSoftNmsMinScore = 1; break;
            default: head.TestScoreThreshold = -0.1; break;
        }
        var error = Assert.Throws<VimException>(() => DetectionTask.FromConfig(config).Dispose())!;
        Assert.That(error.Message, Is.EqualTo(expected));
    }

    /// <summary>
    /// The Soft-NMS keys of model.det_head reach the cascade's inference settings; the default, test_nms_type: nms, leaves
    /// them unread (hard NMS, as before they existed); an unknown type or method is refused naming the key and the values.
    /// </summary>
    [Test]
    public void SoftNmsKeysReachTheCascadeSettingsAndUnknownValuesAreRefused()
    {
        var file = Path.Combine(_root, "det.yaml");
        File.WriteAllText(file, "task: detection\nmodel:\n  backbone:\n    name: vimdet_tiny\n  det_head:\n    mask_on: false\n    test_nms_threshold: 0.4\n");
        var (defaults, _) = ExperimentConfig.Load(file, ["model.det_head.test_soft_nms_sigma=0.1"]);
        using (var hard = DetectionTask.FromConfig(defaults))
        {
            Assert.That(hard.RoiHeads.Settings.TestSoftNms, Is.Null);
            Assert.That(hard.RoiHeads.Settings.TestNmsThreshold, Is.EqualTo(0.4));
        }
        var (soft, _) = ExperimentConfig.Load(file, ["model.det_head.test_nms_type=soft_nms", "model.det_head.test_soft_nms_method=gaussian",
            "model.det_head.test_soft_nms_sigma=0.1", "model.det_head.test_soft_nms_min_score=0.05"]);
        using (var model = DetectionTask.FromConfig(soft))
        {
            Assert.That(model.RoiHeads.Settings.TestSoftNms, Is.EqualTo(new SoftNmsSettings(SoftNmsMethod.Gaussian, 0.1, 0.05)));
            Assert.That(model.RoiHeads.Settings.TestNmsThreshold, Is.EqualTo(0.4));
        }
        var (linear, _) = ExperimentConfig.Load(file, ["model.det_head.test_nms_type=soft_nms"]);
        using (var model = DetectionTask.FromConfig(linear))
            Assert.That(model.RoiHeads.Settings.TestSoftNms, Is.EqualTo(new SoftNmsSettings(SoftNmsMethod.Linear, 0.5, 1e-3)), "mmcv's defaults");

        var error = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["model.det_head.test_soft_nms_method=gausian"]))!;
        Assert.That(error.Message, Does.Contain("'model.det_head.test_soft_nms_method' must be one of linear, gaussian, got 'gausian'; did you mean 'gaussian'?"));
        error = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["model.det_head.test_nms_type=softnms"]))!;
        Assert.That(error.Message, Does.Contain("'model.det_head.test_nms_type' must be one of nms, soft_nms, got 'softnms'"));
    }

    /// <summary>
    /// A training split (6 images) too small for one batch, and a zero batch size, are refused naming data.batch_size. A task
    /// built to train refuses the split before it builds its model; an evaluation-only task accepts it, and opening its
    /// training data refuses it then.
    /// </summary>
    [Test]
    public void ABatchLargerThanTheTrainingSplitNamesTheKey()
    {
        var probe = new ModelFactoryProbe<CascadeMaskRcnn>(TinyDetector);
        var config = Config();
        config.Data.BatchSize = 0;
        var error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, TinyDetector).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size").And.Contain("got 0"));
        config.Data.BatchSize = 7;
        error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, probe.Create, training: DataShard.Whole).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size is 7").And.Contain("'train'").And.Contain("6 image(s)"));
        config.Data.BatchSize = 4;
        error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, probe.Create, training: new DataShard(1, 2)).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size is 4 per process with 2 processes").And.Contain("6 image(s) (3 per process)"));
        Assert.That(probe.Called, Is.False, "refused before a model is built");
        config.Data.BatchSize = 3;
        new DetectionTask(config, TextWriter.Null, probe.Create, training: new DataShard(1, 2)).Dispose();
        Assert.That(probe.Called, Is.True);

        config.Data.BatchSize = 7;
        using var task = new DetectionTask(config, TextWriter.Null, TinyDetector);
        error = Assert.Throws<VimException>(() => task.OpenTrainingData(0, DataPosition.Start, DataShard.Whole).Dispose())!;
        Assert.That(error.Message, Does.Contain("data.batch_size is 7").And.Contain("'train'").And.Contain("6 image(s)"));
    }

    /// <summary>
    /// A training image missing on disk: a task built to train refuses it before building its model; an evaluation-only
    /// task (vim test) reads only the training split's categories, so it accepts it, and refuses it when its training data
    /// is opened. A missing validation image is refused by every task.
    /// </summary>
    [Test]
    public void MissingImagesAreRefusedByTheTasksThatReadThem()
    {
        var probe = new ModelFactoryProbe<CascadeMaskRcnn>(TinyDetector);
        var config = Config();
        var trainFolder = Path.Combine(_root, "coco", "train");
        var lost = Directory.GetFiles(trainFolder).Order(StringComparer.Ordinal).First();
        File.Delete(lost);
        var expected = $"{DetectionData.AnnotationFile(config.Data, "train")}: 1 of the 6 images it lists not found in {trainFolder} (file_name: {Path.GetFileName(lost)})";
        var error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, probe.Create, training: DataShard.Whole).Dispose())!;
        Assert.That(error.Message, Does.StartWith(expected));
        Assert.That(probe.Called, Is.False, "refused before a model is built");
        using (var evaluation = new DetectionTask(config, TextWriter.Null, TinyDetector))
        {
            error = Assert.Throws<VimException>(() => evaluation.OpenTrainingData(0, DataPosition.Start, DataShard.Whole).Dispose())!;
            Assert.That(error.Message, Does.StartWith(expected));
        }

        var valFolder = Path.Combine(_root, "coco", "val");
        File.Delete(Directory.GetFiles(valFolder).Order(StringComparer.Ordinal).Last());
        error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, probe.Create).Dispose())!;
        Assert.That(error.Message, Does.Contain("instances_val.json: 1 of the 3 images it lists not found in " + valFolder));
        Assert.That(probe.Called, Is.False);
    }

    /// <summary>Rank 1 of a 2-process job, for checks that must refuse before any collective is called.</summary>
    private sealed class SecondOfTwoRanks : ICommunicator
    {
        public int Rank => 1;
        public int WorldSize => 2;
        public TimeSpan Timeout => TimeSpan.FromSeconds(1);
        public void AllReduceSum(Tensor tensor) => throw Unexpected();
        public void Broadcast(Tensor tensor, int root = 0) => throw Unexpected();
        public void Barrier() => throw Unexpected();
        public IReadOnlyList<byte[]> AllGather(byte[] data) => throw Unexpected();
        public IReadOnlyList<byte[]> Gather(byte[] data, int root = 0) => throw Unexpected();
        public void Dispose() { }
        private static InvalidOperationException Unexpected() => new("no collective is expected before the refusal");
    }

    [TestCase(new[] { 0, 0 }, null, "data.crop_size must be two positive sizes, [height, width] of the training crop (detection: its square side twice); got [0, 0]")]
    [TestCase(new int[0], null, "data.crop_size must be two positive sizes")]
    [TestCase(new[] { 64, 48 }, null, "data.crop_size must be square for detection (large-scale jitter crops and pads to one side), got [64, 48]")]
    [TestCase(new[] { 64, 64 }, new[] { 512 }, "data.scale must be two positive sizes, [long edge, short edge] of the resize; got [512]")]
    public void ImpossibleCropOrScaleIsRefusedBeforeAnyModelIsBuilt(int[] crop, int[]? scale, string expected)
    {
        var probe = new ModelFactoryProbe<CascadeMaskRcnn>(TinyDetector);
        var config = Config();
        config.Data.CropSize = [.. crop];
        if (scale is not null) config.Data.Scale = [.. scale];
        var error = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, probe.Create).Dispose())!;
        Assert.That(error.Message, Does.StartWith(expected));
        Assert.That(probe.Called, Is.False);
    }

    [Test]
    public void AValidationImageWithoutItsSizeIsRefusedWhenMasksAreEvaluated()
    {
        var config = Config();
        var valFile = DetectionData.AnnotationFile(config.Data, config.Data.ValSplit);
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(valFile))!.AsObject();
        var image = root["images"]![1]!.AsObject();
        image.Remove("width");
        image.Remove("height");
        File.WriteAllText(valFile, root.ToJsonString());

        var e = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, TinyDetector).Dispose())!;
        Assert.That(e.Message, Does.StartWith($"{valFile}: image {image["id"]} ('{image["file_name"]}') has no width/height"));
        config.Model.DetHead.MaskOn = false;
        Assert.DoesNotThrow(() => new DetectionTask(config, TextWriter.Null, TinyDetector).Dispose(), "boxes need no image size");
    }

    [Test]
    public void ABoxOnlyDetectorTrainsOnBoxOnlyAnnotations()
    {
        var config = Config();
        foreach (var split in new[] { config.Data.TrainSplit, config.Data.ValSplit })
        {
            var file = DetectionData.AnnotationFile(config.Data, split);
            var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!.AsObject();
            foreach (var annotation in root["annotations"]!.AsArray()) annotation!.AsObject()["segmentation"] = new System.Text.Json.Nodes.JsonArray();
            File.WriteAllText(file, root.ToJsonString());
        }
        var e = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, TinyDetector).Dispose())!;
        Assert.That(e.Message, Does.Contain("segmentation"), "masks need them");

        config.Model.DetHead.MaskOn = false;
        using var task = new DetectionTask(config, TextWriter.Null, TinyDetector);
        var sample = task.TrainSet.Load(0);
        Assert.That(sample.InstanceCount, Is.GreaterThan(0));
        Assert.That(sample.Masks, Is.Null, "no segmentation is read or decoded");
    }

    [Test]
    public void AValidationFileWithOtherCategoriesIsRefusedBeforeItRelabelsDetections()
    {
        // An exporter that lists only the categories present in the split: the model's class 1 would be evaluated as
        // the validation file's second category, another class.
        var config = Config();
        var valFile = DetectionData.AnnotationFile(config.Data, config.Data.ValSplit);
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(valFile))!.AsObject();
        var categories = root["categories"]!.AsArray();
        var dropped = categories[1]!["id"]!.GetValue<long>();
        var droppedName = categories[1]!["name"]!.GetValue<string>();
        categories.RemoveAt(1);
        var annotations = root["annotations"]!.AsArray();
        foreach (var annotation in annotations.Where(a => a!["category_id"]!.GetValue<long>() == dropped).ToList()) annotations.Remove(annotation);
        File.WriteAllText(valFile, root.ToJsonString());

        var e = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, TinyDetector))!;
        Assert.That(e.Message, Does.StartWith(valFile).And.Contain(DetectionData.AnnotationFile(config.Data, config.Data.TrainSplit))
            .And.Contain($"class 1 is category {categories[1]!["id"]} '{categories[1]!["name"]}' in one and category {dropped} '{droppedName}' in the other (4 against 5 categories)"));
    }

    [Test]
    public void ClassCountMismatchNamesTheConfigKey()
    {
        var config = Config();
        config.Model.NumClasses = 80;
        var e = Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, TinyDetector))!;
        Assert.That(e.Message, Does.Contain("model.num_classes is 80").And.Contain("5 categories"));
    }
}
