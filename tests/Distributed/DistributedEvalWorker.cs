using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Models;
using Vim.Data.Coco;
using Vim.Data.Demo;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>
/// Runs on every rank under mpirun, hosted by `vim dist-selftest host`: evaluates a small untrained
/// segmentation (--kind seg) or detection (--kind det) model on demo data at --root through the task's
/// distributed evaluation, and every rank writes what it returned and which images it ran inference on
/// to --out.rank&lt;R&gt;.json. The same factories give the single-process reference in the test.
/// </summary>
public static class DistributedEvalWorker
{
    public sealed record Outcome(Dictionary<string, double> Metrics, List<int> InferredImages, List<string> Detections);

    public static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static int Run(ICommunicator world, string[] args)
    {
        var options = new Dictionary<string, string>();
        args = args.SkipWhile(a => a == "--").ToArray();
        for (int i = 0; i + 1 < args.Length; i += 2) options[args[i]] = args[i + 1];
        set_num_threads(1);
        var outcome = options["--kind"] switch
        {
            "seg" => Segmentation(options["--root"], world),
            "seg-train" => TrainSegmentation(options["--root"], world),
            _ => Detection(options["--root"], world),
        };
        var path = $"{options["--out"]}.rank{world.Rank.ToString(CultureInfo.InvariantCulture)}.json";
        File.WriteAllBytes(path + ".tmp", JsonSerializer.SerializeToUtf8Bytes(outcome, Json));
        File.Move(path + ".tmp", path, overwrite: true);
        return 0;
    }

    public static Outcome Segmentation(string root, ICommunicator world)
    {
        using var task = new SegmentationTask(SegmentationConfig(root), TextWriter.Null, () => SegmentationModel(NormKind.BatchNorm)) { Communicator = world };
        var inferred = new List<int>();
        var result = task.EvaluateFull((imageId, _, _, _) => inferred.Add(imageId));
        return new Outcome(new Dictionary<string, double>(SegmentationTask.Metrics(result)), inferred, []);
    }

    /// <summary>
    /// Trains the small segmentation model for two iterations through the trainer, with bn and with
    /// syncbn heads and neck; <see cref="Outcome.Detections"/> holds, per norm, the heads' and fpn1's BatchNorm running
    /// means as exact text ("bn:…", "syncbn:…"), and the metrics are syncbn's final evaluation.
    /// </summary>
    public static Outcome TrainSegmentation(string root, ICommunicator world)
    {
        var statistics = new List<string>();
        var metrics = new Dictionary<string, double>();
        foreach (var norm in new[] { NormKind.BatchNorm, NormKind.SyncBatchNorm })
        {
            var config = SegmentationConfig(root);
            config.Model.SegHead.Norm = norm;
            config.Optimizer = new OptimizerConfig { Lr = 1e-3 };
            config.Schedule = new ScheduleConfig { MaxIters = 2, WarmupIters = 1 };
            config.Train = new TrainConfig { EvalInterval = 2, CheckpointInterval = 2, LogInterval = 1 };
            config.Data.BatchSize = 2;
            using var task = new SegmentationTask(config, TextWriter.Null, () => SegmentationModel(norm)) { Communicator = world };
            var result = new Vim.Core.Engine.Trainer<Vim.Data.Loading.Batch>(task, config, Path.Combine(root, $"work-{norm}"), "cfg", TextWriter.Null, world).Run(null);
            var means = task.Model.state_dict().Where(kv => (kv.Key.Contains("_head.", StringComparison.Ordinal) || kv.Key.StartsWith("backbone.fpn1.", StringComparison.Ordinal)) && kv.Key.EndsWith(".running_mean", StringComparison.Ordinal))
                .SelectMany(kv => kv.Value.data<float>().ToArray()).Select(v => v.ToString("R", CultureInfo.InvariantCulture));
            statistics.Add($"{(norm == NormKind.BatchNorm ? "bn" : "syncbn")}:{string.Join(',', means)}");
            metrics = new Dictionary<string, double>(task.Evaluate()) { ["best"] = result.BestMetric ?? double.NaN };
        }
        return new Outcome(metrics, [], statistics);
    }

    public static Outcome Detection(string root, ICommunicator world)
    {
        using var task = new DetectionTask(DetectionConfig(root), TextWriter.Null, Detector) { Communicator = world };
        var metrics = new Dictionary<string, double>(task.Evaluate());
        // Exact text of every field, so the test compares the gathered list bit for bit.
        var detections = task.PredictValidation().Select(d => string.Join('|', d.ImageId, d.CategoryId, d.Score.ToString("R", CultureInfo.InvariantCulture),
            string.Join(',', d.Bbox!.Select(v => v.ToString("R", CultureInfo.InvariantCulture))), d.Segmentation?.CompressedCounts ?? "-")).ToList();
        var inferred = world.WorldSize == 1 ? Enumerable.Range(0, task.ValSet.Count).ToList() : [];
        return new Outcome(metrics, inferred, detections);
    }

    public static void GenerateData(string root)
    {
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(root, "ade"), TrainImages = 8, ValImages = 5, Width = 64, Height = 64, Seed = 5,
        });
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = Path.Combine(root, "coco"), TrainImages = 2, ValImages = 3, Width = 64, Height = 64, Seed = 3,
        });
    }

    private static ExperimentConfig SegmentationConfig(string root) => new()
    {
        Task = TaskKind.Segmentation,
        Data = new DataConfig { Type = "ade20k", Root = Path.Combine(root, "ade"), CropSize = [32, 32], Scale = [64, 64], BatchSize = 1, NumWorkers = 0 },
        Model = new ModelConfig
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count,
            SegHead = new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16 },
            SegTest = new SegmentationTestConfig { Mode = "slide", CropSize = [32, 32], Stride = [24, 24] },
        },
    };

    private static EncoderDecoder SegmentationModel(NormKind norm)
    {
        var backbone = new VisionMamba(VimVariants.SegTiny with { EmbedDim = 32, Depth = 4, TapBlocks = [0, 1, 2, 3], ImageSize = 64, DropPathRate = 0 }, 1);
        torch.manual_seed(2);
        return new EncoderDecoder(new SegmentationPyramid(backbone, norm), new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16, Norm = norm }, 5);
    }

    private static ExperimentConfig DetectionConfig(string root) => new()
    {
        Task = TaskKind.Detection,
        Data = new DataConfig { Type = "coco", Root = Path.Combine(root, "coco"), TrainSplit = "train", ValSplit = "val", CropSize = [64, 64], BatchSize = 1, NumWorkers = 0 },
        Model = new ModelConfig { NumClasses = DemoDatasetGenerator.ClassNames.Count },
    };

    private static CascadeMaskRcnn Detector()
    {
        // Some layers draw their initial weights from torch's global generator.
        torch.manual_seed(4);
        var net = new VisionMamba(VimVariants.DetTiny with { EmbedDim = 32, Depth = 2, ImageSize = 64, DropPathRate = 0 }, 1);
        var roi = new CascadeRoiHeadsSettings
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count, BatchSizePerImage = 16, BoxHeadConvDims = [16], BoxHeadFcDims = [32],
            MaskHeadConvDims = [16, 16],
        };
        var rpn = new RpnSettings { BatchSizePerImage = 32, PreNmsTopKTrain = 200, PostNmsTopKTrain = 50, PreNmsTopKTest = 200, PostNmsTopKTest = 50 };
        return new CascadeMaskRcnn(new SimpleFeaturePyramid(net, outChannels: 16, seed: 2), roi, rpn, seed: 3);
    }
}
