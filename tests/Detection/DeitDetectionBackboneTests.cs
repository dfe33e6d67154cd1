using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Data.Demo;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Tests.Core;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>The ViTDet-style DeiT-Ti detection backbone and pretrained initialisation of detection backbones.</summary>
public class DeitDetectionBackboneTests
{
    /// <summary>Width 32, two blocks: block 0 attends in 3×3 windows (4×6 grids get padded), block 1 globally.</summary>
    private static DeitConfig Small => VimVariants.DeitDetTiny with { EmbedDim = 32, Heads = 2, Depth = 2, ImageSize = 64, DropPathRate = 0, WindowSize = 3, GlobalBlocks = [1] };

    private static long Count(nn.Module module) => module.parameters().Sum(p => p.numel());

    /// <summary>Parameters of one pre-norm ViT block of width d (MLP ratio 4): two LayerNorms, qkv, proj, fc1, fc2.</summary>
    private static long Block(long d) => 2 * (2 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);

    /// <summary>ViTDet simple feature pyramid on width d with c output channels (ConvT with bias, convs without, LN weight+bias).</summary>
    private static long Pyramid(long d, long c)
    {
        long convT1 = d * (d / 2) * 4 + d / 2, convT2 = (d / 2) * (d / 4) * 4 + d / 4, ln = 2 * (d / 2);
        long Out(long inChannels) => inChannels * c + 2 * c + c * c * 9 + 2 * c;
        return (convT1 + ln + convT2 + Out(d / 4)) + (convT1 + Out(d / 2)) + Out(d) + Out(d);
    }

    [Test]
    public void RegisteredBackboneHasNoClassTokenNoFinalNormAndTheHandCountedParameters()
    {
        using var model = ModelRegistry.Create("deitdet_tiny");
        var state = model.state_dict();
        Assert.That(state["net.pos_embed"].shape, Is.EqualTo(new long[] { 1, 64 * 64, 192 }), "pos_embed for the 1024² grid, no class slot");
        Assert.That(state.Keys, Has.None.EqualTo("net.cls_token").And.None.StartWith("net.norm.").And.None.StartWith("net.head."));
        Assert.That(state.Keys.Count(k => k.StartsWith("net.blocks.", StringComparison.Ordinal) && k.EndsWith(".attn.qkv.weight", StringComparison.Ordinal)), Is.EqualTo(12));
        // pos 4096·192 + patch 192·3·16·16 + 192 + 12 blocks + pyramid (192 → 256 channels) = 8,937,328.
        long expected = 4096 * 192 + (192 * 3 * 256 + 192) + 12 * Block(192) + Pyramid(192, 256);
        Assert.That(expected, Is.EqualTo(8_937_328), "the hand count itself: 6,272,448 backbone + 2,664,880 pyramid");
        Assert.That(Count(model), Is.EqualTo(expected));
    }

    [Test]
    public void SmallBackboneGivesTheP2ToP6PyramidAtAnyInputSize()
    {
        using var scope = NewDisposeScope();
        using var pyramid = new SimpleFeaturePyramid(new VisionTransformer(Small, seed: 1), outChannels: 16, seed: 2);
        Assert.That(Count(pyramid), Is.EqualTo(16 * 32 + (32 * 3 * 256 + 32) + 2 * Block(32) + Pyramid(32, 16)));
        pyramid.eval();
        using var noGrad = no_grad();
        // (rows, cols) of p2..p6; p6 is max-pool(k 1, s 2) of p5, so odd sizes round up.
        var cases = new (int Height, int Width, (long, long)[] Sizes)[]
        {
            (64, 64, [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]),
            (64, 96, [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]),
        };
        foreach (var (height, width, sizes) in cases)
        {
            var maps = pyramid.forward(randn(2, 3, height, width));
            Assert.That(maps.Select(m => m.Name), Is.EqualTo(new[] { "p2", "p3", "p4", "p5", "p6" }));
            Assert.That(maps.Select(m => m.Stride), Is.EqualTo(new[] { 4, 8, 16, 32, 64 }));
            for (int i = 0; i < maps.Count; i++)
            {
                Assert.That(maps[i].Map.shape, Is.EqualTo(new long[] { 2, 16, sizes[i].Item1, sizes[i].Item2 }), $"{maps[i].Name} at {height}×{width}");
                Assert.That(maps[i].Map.isfinite().all().item<bool>(), Is.True);
            }
        }
    }

    [TestCase(5, 7)]   // padded to 8×8: the edge windows hold zero tokens
    [TestCase(8, 4)]   // tiles exactly
    public void WindowAttentionIsAttentionRunSeparatelyInEachZeroPaddedWindow(int rows, int cols)
    {
        const int dim = 8, w = 4;
        using var scope = NewDisposeScope();
        using var block = new TransformerBlock(dim, 2, 4, 1e-6, 0, AttentionKind.Explicit, windowSize: w);
        block.eval();
        var parts = block.named_children().ToDictionary(c => c.name, c => (nn.Module<Tensor, Tensor>)c.module);
        using var noGrad = no_grad();
        var x = randn(2, rows * cols, dim);
        var normed = parts["norm1"].forward(x);
        var attended = zeros_like(x);
        for (int b = 0; b < 2; b++)
            for (int top = 0; top < rows; top += w)
                for (int left = 0; left < cols; left += w)
                {
                    // The window's w·w tokens in row-major order; positions past the grid stay zero vectors.
                    var window = zeros(1, w * w, dim);
                    for (int i = 0; i < w; i++)
                        for (int j = 0; j < w; j++)
                            if (top + i < rows && left + j < cols) window[0, i * w + j].copy_(normed[b, (top + i) * cols + left + j]);
                    var output = parts["attn"].forward(window);
                    for (int i = 0; i < w; i++)
                        for (int j = 0; j < w; j++)
                            if (top + i < rows && left + j < cols) attended[b, (top + i) * cols + left + j].copy_(output[0, i * w + j]);
                }
        var expected = x + attended;
        expected = expected + parts["mlp"].forward(parts["norm2"].forward(expected));

        Assert.That(block.Forward(x, rows, cols).allclose(expected, rtol: 0, atol: 1e-5), Is.True);
        Assert.Throws<VimException>(() => block.forward(x), "a windowed block needs the grid");
    }

    [Test]
    public void RegisteredBackboneAttendsInWindowsExceptInFourGlobalBlocks()
    {
        using var model = ModelRegistry.Create("deitdet_tiny");
        var windows = model.named_modules().Where(m => m.module is TransformerBlock)
            .DistinctBy(m => m.name).ToDictionary(m => m.name, m => ((TransformerBlock)m.module).WindowSize);
        Assert.That(windows, Has.Count.EqualTo(12));
        for (int i = 0; i < 12; i++)
            Assert.That(windows[$"net.blocks.{i}"], Is.EqualTo(i % 3 == 2 ? 0 : 14), $"block {i}");
    }

    [Test]
    public void BackboneFeaturesAreThePatchTokensOfTheLastBlock()
    {
        using var scope = NewDisposeScope();
        using var backbone = new VisionTransformer(Small, seed: 1);
        backbone.eval();
        using var noGrad = no_grad();
        var images = randn(1, 3, 64, 96);
        var tokens = backbone.ForwardTokens(images);        // no final norm, no class token: (1, 4·6, 32)
        Assert.That(tokens.shape, Is.EqualTo(new long[] { 1, 24, 32 }));
        var map = backbone.ForwardTaps(images).Single();
        Assert.That(map.shape, Is.EqualTo(new long[] { 1, 32, 4, 6 }));
        // Token (row 2, col 5) is sequence index 2·6 + 5.
        Assert.That(map[0, .., 2, 5].allclose(tokens[0, 17]), Is.True);
    }

    [Test]
    public void DetectionConfigBuildsTheDeitDetectorWithFourteenLayerDecayIds()
    {
        var (config, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs/det/cascade_mask_rcnn_deit_tiny_1024_100ep_coco.yaml"));
        Assert.That(config.Model.Backbone.Name, Is.EqualTo("deitdet_tiny"));
        Assert.That(config.Optimizer.LayerDecayRate, Is.EqualTo(0.7));
        using var detector = DetectionTask.FromConfig(config);
        var names = detector.named_parameters().Select(p => p.name).ToList();
        Assert.That(names, Has.Some.StartsWith("backbone.net.blocks.11."));
        int layers = ParameterGroupRules.CountBlocks(names);
        Assert.That(layers, Is.EqualTo(12));
        Assert.That(names.Select(n => ParameterGroupRules.LayerId(n, layers)).Distinct().OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 14)));
        Assert.That(ParameterGroupRules.LayerId("backbone.net.pos_embed", layers), Is.EqualTo(0));
        Assert.That(ParameterGroupRules.LayerId("backbone.net.blocks.0.attn.qkv.weight", layers), Is.EqualTo(1));
        Assert.That(ParameterGroupRules.LayerId("backbone.simfp_2.0.weight", layers), Is.EqualTo(13));
        var groups = ParameterGroupRules.Build(detector, config.Optimizer, layers);
        foreach (var group in groups)
        {
            int id = int.Parse(group.Name[5..group.Name.IndexOf('_')]);
            Assert.That(group.LrScale, Is.EqualTo(Math.Pow(0.7, 13 - id)).Within(1e-12), group.Name);
        }
        Assert.That(groups.Single(g => g.Parameters.Any(p => p.Name == "backbone.net.pos_embed")).WeightDecay, Is.EqualTo(0.0));
    }
}

/// <summary>model.backbone.pretrained through DetectionTask and `vim train`.</summary>
public class DetectionPretrainedTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-detpretrained-").FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 4, ValImages = 2, Width = 64, Height = 64, Seed = 5,
        });
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private ExperimentConfig Config(string? pretrained, string key = "model") => new()
    {
        Task = TaskKind.Detection,
        Data = new DataConfig { Type = "coco", Root = Path.Combine(_root, "coco"), TrainSplit = "train", ValSplit = "val", CropSize = [64, 64], BatchSize = 2, NumWorkers = 0 },
        Model = new ModelConfig
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count,
            Backbone = new BackboneConfig { Name = "deitdet_tiny", Pretrained = pretrained, PretrainedKey = key },
        },
    };

    private static CascadeMaskRcnn TinyDeitDetector()
    {
        var net = new VisionTransformer(VimVariants.DeitDetTiny with { EmbedDim = 32, Heads = 2, Depth = 2, ImageSize = 64, DropPathRate = 0, WindowSize = 3, GlobalBlocks = [1] }, 1);
        var roi = new CascadeRoiHeadsSettings
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count, BatchSizePerImage = 16, BoxHeadConvDims = [16], BoxHeadFcDims = [32],
            MaskHeadConvDims = [16, 16, 16, 16, 16],
        };
        var rpn = new RpnSettings { BatchSizePerImage = 32, PreNmsTopKTrain = 200, PostNmsTopKTrain = 50, PreNmsTopKTest = 200, PostNmsTopKTest = 50 };
        return new CascadeMaskRcnn(new SimpleFeaturePyramid(net, outChannels: 16, seed: 2), roi, rpn, seed: 3);
    }

    [Test]
    public void TheTaskLoadsTheConfiguredCheckpointIntoItsBackbone()
    {
        using var scope = NewDisposeScope();
        var source = PretrainedDenseBackboneTests.TimmDeitStateDict(depth: 2);
        var path = PretrainedDenseBackboneTests.WriteOfficial(_root, "deit_tiny.safetensors", source);
        var log = new StringWriter();

        using var task = new DetectionTask(Config(path), log, TinyDeitDetector);

        Assert.That(task.PretrainedReport, Is.Not.Null);
        Assert.That(task.PretrainedReport!.Ignored, Is.SupersetOf(new[] { "cls_token", "head.weight", "head.bias" }));
        Assert.That(task.PretrainedReport.Unexpected, Is.Empty);
        Assert.That(task.PretrainedReport.Missing, Has.None.StartWith("backbone.net."), "the whole backbone comes from the checkpoint");
        Assert.That(task.PretrainedReport.Missing, Has.Some.StartWith("backbone.simfp_"));
        var state = task.Model.state_dict();
        Assert.That(state["backbone.net.blocks.1.mlp.fc1.weight"][100, 3].item<float>(), Is.EqualTo(source["blocks.1.mlp.fc1.weight"][100, 3].item<float>()));
        Assert.That(log.ToString(), Does.Contain("pretrained backbone (deitdet_tiny)").And.Contain(path));
    }

    [Test]
    public void AFileWithoutTheConfiguredEntryOrNoFileAtAllIsAClearError()
    {
        using var scope = NewDisposeScope();
        var bare = PretrainedDenseBackboneTests.WriteOfficial(_root, "timm_bare.safetensors", PretrainedDenseBackboneTests.TimmDeitStateDict(depth: 2), entry: null);
        var error = Assert.Throws<VimException>(() => new DetectionTask(Config(bare), TextWriter.Null, TinyDeitDetector).Dispose())!;
        Assert.That(error.Message, Does.Contain(bare).And.Contain("'model'").And.Contain("pretrained_key"));

        var lostKey = Assert.Throws<VimException>(() => new DetectionTask(Config(bare, key: "model_ema"), TextWriter.Null, TinyDeitDetector).Dispose())!;
        Assert.That(lostKey.Message, Does.Contain(bare).And.Contain("model_ema"));

        var missing = Path.Combine(_root, "nowhere.pth");
        var notFound = Assert.Throws<VimException>(() => new DetectionTask(Config(missing), TextWriter.Null, TinyDeitDetector).Dispose())!;
        Assert.That(notFound.Message, Does.Contain("model.backbone.pretrained").And.Contain(missing));
    }

    [Test]
    public void TrainingFromTheDemoConfigSavesTheLoadReportInTheWorkDir()
    {
        using var scope = NewDisposeScope();
        // The official DeiT-Ti embedding shapes (224²: pos_embed [1, 197, 192]) with two of its twelve blocks, resized to
        // the demo config's img_size 256 (16 × 16 positions).
        var source = PretrainedDenseBackboneTests.TimmDeitStateDict(depth: 2, dim: 192, grid: 14);
        var path = PretrainedDenseBackboneTests.WriteOfficial(_root, "deit_tiny_patch16_224.safetensors", source);
        var dir = Path.Combine(_root, "work");
        var (config, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs/det/cascade_mask_rcnn_deit_tiny_demo_coco.yaml"),
        [
            $"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[64,64]", "data.num_workers=0", $"model.backbone.pretrained={path}",
            "schedule.max_iters=1", "schedule.milestones=[1]", "schedule.warmup_iters=1", "train.eval_interval=1000", "train.checkpoint_interval=1",
        ]);

        TrainCommand.Train(config, dir, null, SingleProcessCommunicator.Instance, CancellationToken.None);

        var saved = File.ReadAllText(Path.Combine(dir, "pretrained_load.txt"));
        Assert.That(saved, Does.Contain(path).And.Contain("pos_embed: [1, 197, 192] → [1, 256, 192]").And.Contain("cls_token").And.Contain("head.weight"));
        Assert.That(saved, Does.Contain("backbone.net.blocks.11.attn.qkv.weight"), "blocks beyond the checkpoint's depth are reported missing");
    }
}
