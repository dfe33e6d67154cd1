using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Models;
using Vim.Data.Demo;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// Official-layout ImageNet checkpoints (timm/DeiT and hustvl/Vim key names, written as safetensors
/// under "model.") initialising the detection and segmentation backbones.
/// </summary>
public class PretrainedDenseBackboneTests
{
    private const int Dim = 32;
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-pretrained-dense-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// A timm DeiT classifier state dict written key by key from timm's layout (not from our module),
    /// 224²-style: a 4×4 grid, class slot first, optional distillation token, a 10-class head.
    /// </summary>
    internal static Dictionary<string, Tensor> TimmDeitStateDict(int depth, bool distilled = false, int dim = Dim, int grid = 4)
    {
        var generator = new Generator(7);
        Tensor R(params long[] shape) => randn(shape, generator: generator);
        int slots = distilled ? 2 : 1;
        long mlp = 4L * dim;
        var state = new Dictionary<string, Tensor>
        {
            ["cls_token"] = R(1, 1, dim),
            ["pos_embed"] = R(1, slots + grid * grid, dim),
            ["patch_embed.proj.weight"] = R(dim, 3, 16, 16),
            ["patch_embed.proj.bias"] = R(dim),
        };
        if (distilled) state["dist_token"] = R(1, 1, dim);
        for (int i = 0; i < depth; i++)
        {
            var b = $"blocks.{i}.";
            state[b + "norm1.weight"] = R(dim);
            state[b + "norm1.bias"] = R(dim);
            state[b + "attn.qkv.weight"] = R(3 * dim, dim);
            state[b + "attn.qkv.bias"] = R(3 * dim);
            state[b + "attn.proj.weight"] = R(dim, dim);
            state[b + "attn.proj.bias"] = R(dim);
            state[b + "norm2.weight"] = R(dim);
            state[b + "norm2.bias"] = R(dim);
            state[b + "mlp.fc1.weight"] = R(mlp, dim);
            state[b + "mlp.fc1.bias"] = R(mlp);
            state[b + "mlp.fc2.weight"] = R(dim, mlp);
            state[b + "mlp.fc2.bias"] = R(dim);
        }
        state["norm.weight"] = R(dim);
        state["norm.bias"] = R(dim);
        state["head.weight"] = R(10, dim);
        state["head.bias"] = R(10);
        if (distilled)
        {
            state["head_dist.weight"] = R(10, dim);
            state["head_dist.bias"] = R(10);
        }
        return state;
    }

    /// <summary>Writes a state dict the way the official training scripts save it: the weights under "model" (plus other entries).</summary>
    internal static string WriteOfficial(string directory, string name, IReadOnlyDictionary<string, Tensor> state, string? entry = "model")
    {
        var path = Path.Combine(directory, name);
        var prefix = entry is null ? "" : entry + ".";
        var tensors = state.Select(kv => new KeyValuePair<string, Tensor>(prefix + kv.Key, kv.Value)).ToList();
        if (entry is not null) tensors.Add(new("epoch", tensor(new long[] { 299 })));
        SafeTensorsFormat.Write(path, tensors);
        return path;
    }

    /// <summary>Bicubic (align_corners false) resize of a (1, rows·cols, D) grid, straight through torch.</summary>
    private static Tensor Bicubic(Tensor grid, int rows, int cols, int newRows, int newCols)
    {
        var image = grid.reshape(1, rows, cols, grid.shape[2]).permute(0, 3, 1, 2);
        var resized = nn.functional.interpolate(image, size: new long[] { newRows, newCols }, mode: InterpolationMode.Bicubic, align_corners: false);
        return resized.permute(0, 2, 3, 1).reshape(1, (long)newRows * newCols, grid.shape[2]);
    }

    private static void AssertSame(Tensor actual, Tensor expected, string what) =>
        Assert.That(actual.shape.SequenceEqual(expected.shape) && actual.eq(expected).all().item<bool>(), Is.True, what);

    private static DeitConfig SmallDeitDet => VimVariants.DeitDetTiny with { EmbedDim = Dim, Heads = 2, Depth = 2, ImageSize = 96, DropPathRate = 0, WindowSize = 3, GlobalBlocks = [1] };

    [Test]
    public void TimmDeitCheckpointInitialisesTheDetectionBackbone()
    {
        using var scope = NewDisposeScope();
        var source = TimmDeitStateDict(depth: 2);
        var path = WriteOfficial(_dir, "deit_tiny_patch16_224.safetensors", source);
        using var pyramid = new SimpleFeaturePyramid(new VisionTransformer(SmallDeitDet, seed: 3), outChannels: 16, seed: 4);

        var report = PretrainedWeights.LoadBackbone(pyramid, path);

        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Mismatched, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.EquivalentTo(new[] { "cls_token", "norm.weight", "norm.bias", "head.weight", "head.bias" }));
        Assert.That(report.Missing, Has.All.StartWith("simfp_"), "only the pyramid is new");
        // 4 embedding tensors minus cls_token, 12 per block.
        Assert.That(report.Loaded, Has.Count.EqualTo(3 + 2 * 12));
        Assert.That(report.Adapted, Has.Count.EqualTo(1));
        Assert.That(report.Adapted[0], Does.StartWith("pos_embed: [1, 17, 32] → [1, 36, 32]").And.Contain("class slot 0 removed"));
        Assert.That(report.ToString(), Does.Contain("adapted before loading").And.Contain("head.weight"));

        var target = pyramid.state_dict();
        Assert.That(target.Keys, Has.None.EqualTo("net.cls_token").And.None.EqualTo("net.norm.weight"));
        AssertSame(target["net.blocks.1.attn.qkv.weight"][17, 5], source["blocks.1.attn.qkv.weight"][17, 5], "qkv entry");
        AssertSame(target["net.blocks.0.mlp.fc2.bias"], source["blocks.0.mlp.fc2.bias"], "fc2 bias");
        AssertSame(target["net.patch_embed.proj.weight"][3, 2, 15, 0], source["patch_embed.proj.weight"][3, 2, 15, 0], "patch kernel entry");
        // The class slot (index 0) goes; the 4×4 patch grid is resized to the 6×6 grid of a 96² input.
        var expected = Bicubic(source["pos_embed"].narrow(1, 1, 16), 4, 4, 6, 6);
        Assert.That(target["net.pos_embed"].allclose(expected, rtol: 0, atol: 1e-6), Is.True);
    }

    /// <summary>Value of a tests/data/pretrained fixture's k-th tensor at flat index i (see make_pretrained_fixtures.py).</summary>
    private static float FixtureValue(int k, long i) => (float)(((37 * i + 11 * k) % 101 - 50) / 64.0);

    [Test]
    public void OfficialDeitPthInitialisesTheFullGridDetectionBackbone()
    {
        using var scope = NewDisposeScope();
        // torch.save layout of the official DeiT release, DeiT-Ti's 224² table [1, 197, D] (D shrunk to 8, one block).
        var path = RepositoryPaths.TestData("pretrained", "deit_tiny_official_like.pth");
        var config = VimVariants.DeitDetTiny with { EmbedDim = 8, Heads = 2, Depth = 1, GlobalBlocks = [], DropPathRate = 0 };
        using var pyramid = new SimpleFeaturePyramid(new VisionTransformer(config, seed: 1), outChannels: 8, seed: 2);

        var report = PretrainedWeights.LoadBackbone(pyramid, path);

        Assert.That(report.Source, Does.Contain(path).And.Contain("[model]"));
        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Mismatched, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.EquivalentTo(new[] { "cls_token", "norm.weight", "norm.bias", "head.weight", "head.bias" }));
        Assert.That(report.Loaded, Has.Count.EqualTo(3 + 12));
        Assert.That(report.Adapted.Single(), Does.StartWith("pos_embed: [1, 197, 8] → [1, 4096, 8] (class slot 0 removed, grid 14×14 → 64×64 bicubic)"));
        var target = pyramid.state_dict();
        // Tensor 6 is blocks.0.attn.qkv.weight [24, 8]; tensor 2 patch_embed.proj.weight [8, 3, 16, 16]; tensor 15 mlp.fc2.bias.
        Assert.That(target["net.blocks.0.attn.qkv.weight"][5, 3].item<float>(), Is.EqualTo(FixtureValue(6, 5 * 8 + 3)));
        Assert.That(target["net.patch_embed.proj.weight"][7, 2, 15, 9].item<float>(), Is.EqualTo(FixtureValue(2, ((7 * 3 + 2) * 16 + 15) * 16 + 9)));
        Assert.That(target["net.blocks.0.mlp.fc2.bias"][4].item<float>(), Is.EqualTo(FixtureValue(15, 4)));
        var table = tensor(Enumerable.Range(0, 197 * 8).Select(i => FixtureValue(1, i)).ToArray()).reshape(1, 197, 8);
        var expected = Bicubic(table.narrow(1, 1, 196), 14, 14, 64, 64);
        Assert.That(target["net.pos_embed"].allclose(expected, rtol: 0, atol: 1e-6), Is.True);
    }

    [Test]
    public void OfficialRopeNoClassTokenVimPthInitialisesTheFullGridDetectionBackbone()
    {
        using var scope = NewDisposeScope();
        // vim/main.py's layout of the classifier the official detection recipe starts from: pos_embed [1, 196, D], RoPE tables saved.
        var path = RepositoryPaths.TestData("pretrained", "vim_rope_nocls_official_like.pth");
        var config = VimVariants.DetTiny with { EmbedDim = 8, Depth = 1, DropPathRate = 0 };
        using var pyramid = new SimpleFeaturePyramid(new VisionMamba(config, seed: 1), outChannels: 8, seed: 2);

        var report = PretrainedWeights.LoadBackbone(pyramid, path);

        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Mismatched, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.EquivalentTo(new[] { "rope.freqs_cos", "rope.freqs_sin", "head.weight", "head.bias", "norm_f.weight" }));
        Assert.That(report.Missing, Has.All.StartWith("simfp_"), report.ToString());
        Assert.That(report.Adapted.Single(), Is.EqualTo("pos_embed: [1, 196, 8] → [1, 4096, 8] (grid 14×14 → 64×64 bicubic)"));
        var target = pyramid.state_dict();
        // Tensor order in make_pretrained_fixtures.py: 9 A_b_log [16, 16], 17 conv1d_b.weight [16, 1, 4], 19 x_proj_b.weight [33, 16].
        Assert.That(target["net.layers.0.mixer.A_b_log"][15, 15].item<float>(), Is.EqualTo(FixtureValue(9, 255)));
        Assert.That(target["net.layers.0.mixer.conv1d_b.weight"][3, 0, 2].item<float>(), Is.EqualTo(FixtureValue(17, 3 * 4 + 2)));
        Assert.That(target["net.layers.0.mixer.x_proj_b.weight"][20, 9].item<float>(), Is.EqualTo(FixtureValue(19, 20 * 16 + 9)));
        var table = tensor(Enumerable.Range(0, 196 * 8).Select(i => FixtureValue(0, i)).ToArray()).reshape(1, 196, 8);
        Assert.That(target["net.pos_embed"].allclose(Bicubic(table, 14, 14, 64, 64), rtol: 0, atol: 1e-6), Is.True);
    }

    [Test]
    public void DistilledDeitDropsTheDistillationTokenAndItsSlot()
    {
        using var scope = NewDisposeScope();
        var source = TimmDeitStateDict(depth: 2, distilled: true);
        var path = WriteOfficial(_dir, "deit_tiny_distilled.safetensors", source);
        using var backbone = new VisionTransformer(SmallDeitDet, seed: 3);

        var report = PretrainedWeights.LoadBackbone(backbone, path);

        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.SupersetOf(new[] { "dist_token", "head_dist.weight", "head_dist.bias", "cls_token" }));
        var expected = Bicubic(source["pos_embed"].narrow(1, 2, 16), 4, 4, 6, 6);
        Assert.That(backbone.state_dict()["pos_embed"].allclose(expected, rtol: 0, atol: 1e-6), Is.True);
    }

    [Test]
    public void TimmDeitCheckpointInitialisesTheSegmentationBackboneKeepingTheClassSlot()
    {
        using var scope = NewDisposeScope();
        var source = TimmDeitStateDict(depth: 2);
        var path = WriteOfficial(_dir, "deit.safetensors", source);
        var config = VimVariants.DeitTiny with { EmbedDim = Dim, Heads = 2, Depth = 2, ImageSize = 96, NumClasses = 0, TapBlocks = [0, 1, 1, 1] };
        using var pyramid = new SegmentationPyramid(new VisionTransformer(config, seed: 3));

        var report = PretrainedWeights.LoadBackbone(pyramid, path);

        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Mismatched, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.EquivalentTo(new[] { "head.weight", "head.bias" }));
        Assert.That(report.Missing, Has.All.StartWith("fpn"));
        var target = pyramid.state_dict();
        AssertSame(target["net.cls_token"], source["cls_token"], "class token");
        AssertSame(target["net.norm.bias"], source["norm.bias"], "final norm");
        var expected = cat(new[] { source["pos_embed"].narrow(1, 0, 1), Bicubic(source["pos_embed"].narrow(1, 1, 16), 4, 4, 6, 6) }, 1);
        Assert.That(target["net.pos_embed"].allclose(expected, rtol: 0, atol: 1e-6), Is.True);
    }

    /// <summary>An official Vim classifier state dict from our classifier (its keys are checked against the official list elsewhere).</summary>
    private static Dictionary<string, Tensor> VimClassifierStateDict(bool ropeNoClassToken)
    {
        var config = VimVariants.Tiny with { EmbedDim = Dim, Depth = 2, ImageSize = 64, NumClasses = 10 };
        if (ropeNoClassToken)
            config = config with { ClassToken = ClassTokenPosition.None, Readout = VimReadout.Mean, UseRope = true, RopeResidual = true };
        using var classifier = new VisionMamba(config, seed: 11);
        var state = classifier.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        if (ropeNoClassToken)
        {
            // The rope pretrain variant saves its RoPE tables (rows·cols, D) with the weights.
            state.TryAdd("rope.freqs_cos", randn(16, Dim));
            state.TryAdd("rope.freqs_sin", randn(16, Dim));
        }
        return state;
    }

    private static VimConfig SmallVimDet => VimVariants.DetTiny with { EmbedDim = Dim, Depth = 2, ImageSize = 96, DropPathRate = 0 };

    [Test]
    public void RopeNoClassTokenVimCheckpointInitialisesTheDetectionBackbone()
    {
        using var scope = NewDisposeScope();
        var source = VimClassifierStateDict(ropeNoClassToken: true);
        Assert.That(source["pos_embed"].shape, Is.EqualTo(new long[] { 1, 16, Dim }), "fixture: no class slot");
        var path = WriteOfficial(_dir, "vim_tiny_rope_also_residual.safetensors", source);
        using var pyramid = new SimpleFeaturePyramid(new VisionMamba(SmallVimDet, seed: 3), outChannels: 16, seed: 4);

        var report = PretrainedWeights.LoadBackbone(pyramid, path);

        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Mismatched, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.EquivalentTo(new[] { "rope.freqs_cos", "rope.freqs_sin", "head.weight", "head.bias", "norm_f.weight" }));
        Assert.That(report.Missing, Has.All.StartWith("simfp_"), report.ToString());
        var target = pyramid.state_dict();
        AssertSame(target["net.layers.1.mixer.x_proj_b.weight"][3, 7], source["layers.1.mixer.x_proj_b.weight"][3, 7], "x_proj_b entry");
        AssertSame(target["net.layers.0.mixer.A_log"], source["layers.0.mixer.A_log"], "A_log");
        var expected = Bicubic(source["pos_embed"], 4, 4, 6, 6);
        Assert.That(target["net.pos_embed"].allclose(expected, rtol: 0, atol: 1e-6), Is.True);
    }

    [TestCase(PosEmbedResizeRule.ClassSlotAware, 8)]
    [TestCase(PosEmbedResizeRule.OfficialFirstSlot, 0)]
    public void MiddleClassTokenVimCheckpointLosesItsClassSlotInTheDetectionBackbone(PosEmbedResizeRule rule, int classSlot)
    {
        using var scope = NewDisposeScope();
        var source = VimClassifierStateDict(ropeNoClassToken: false);
        Assert.That(source["pos_embed"].shape, Is.EqualTo(new long[] { 1, 17, Dim }), "fixture: middle class slot");
        var path = WriteOfficial(_dir, "vim_t_midclstok.safetensors", source);
        using var backbone = new VisionMamba(SmallVimDet with { PosEmbedResize = rule }, seed: 3);

        var report = PretrainedWeights.LoadBackbone(backbone, path);

        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.SupersetOf(new[] { "cls_token", "head.weight", "head.bias", "norm_f.weight" }));
        Assert.That(report.Adapted.Single(), Does.Contain($"class slot {classSlot} removed"));
        // Slot 8 = 16 patches / 2 is where the middle class token sits; the official resize takes slot 0.
        var pos = source["pos_embed"];
        var grid = cat(new[] { pos.narrow(1, 0, classSlot), pos.narrow(1, classSlot + 1, 16 - classSlot) }, 1);
        Assert.That(backbone.state_dict()["pos_embed"].allclose(Bicubic(grid, 4, 4, 6, 6), rtol: 0, atol: 1e-6), Is.True);
    }

    [Test]
    public void AMissingEntryNamesTheFileTheKeyAndWhatTheFileHolds()
    {
        using var scope = NewDisposeScope();
        var bare = WriteOfficial(_dir, "timm_bare.safetensors", TimmDeitStateDict(depth: 2), entry: null);
        using var backbone = new VisionTransformer(SmallDeitDet, seed: 3);

        var error = Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(backbone, bare, "model"))!;
        Assert.That(error.Message, Does.Contain(bare).And.Contain("'model'").And.Contain("pretrained_key").And.Contain("blocks"));

        // The bare timm layout loads with an empty key.
        var report = PretrainedWeights.LoadBackbone(backbone, bare, "");
        Assert.That(report.Loaded, Has.Count.EqualTo(3 + 2 * 12));
        Assert.That(report.Missing, Is.Empty);
    }

    [Test]
    public void ACheckpointOfTheOtherArchitectureIsRefused()
    {
        using var scope = NewDisposeScope();
        var vimPath = RepositoryPaths.TestData("pretrained", "vim_rope_nocls_official_like.pth");
        using var deit = new VisionTransformer(VimVariants.DeitDetTiny with { EmbedDim = 8, Heads = 2, Depth = 1, ImageSize = 64, GlobalBlocks = [] }, seed: 1);
        var error = Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(deit, vimPath))!;
        Assert.That(error.Message, Does.Contain(vimPath).And.Contain("blocks.0.attn.qkv.weight").And.Contain("does not hold weights for this backbone"));

        var deitPath = RepositoryPaths.TestData("pretrained", "deit_tiny_official_like.pth");
        using var vim = new VisionMamba(VimVariants.DetTiny with { EmbedDim = 8, Depth = 1, ImageSize = 64 }, seed: 1);
        Assert.That(Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(vim, deitPath))!.Message, Does.Contain("layers.0.mixer.in_proj.weight"));
    }

    [Test]
    public void ACheckpointOfAWiderVariantIsRefusedWithBothShapesAndNothingLoaded()
    {
        using var scope = NewDisposeScope();
        // A "Vim-S" classifier (width 48) for a "Vim-Ti" detection backbone (width 32).
        using var wider = new VisionMamba(VimVariants.Tiny with { EmbedDim = 48, Depth = 2, ImageSize = 64, NumClasses = 10 }, seed: 11);
        var path = WriteOfficial(_dir, "vim_s_midclstok.safetensors", wider.state_dict());
        using var backbone = new VisionMamba(SmallVimDet, seed: 3);
        var before = backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        var error = Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(backbone, path))!;

        Assert.That(error.Message, Does.StartWith($"{path}[model]: "));
        Assert.That(error.Message, Does.Contain("of the checkpoint's tensors have another shape than the backbone's, e.g. layers.0.mixer.in_proj.weight: [192, 48] in the checkpoint, [128, 32] in the backbone; "));
        Assert.That(error.Message, Does.Contain("(embedding width 32, depth 2, state size 16)").And.Contain("model.backbone.name"));
        foreach (var (name, value) in backbone.state_dict())
            Assert.That(value.eq(before[name]).all().item<bool>(), Is.True, $"{name} untouched");
    }

    [Test]
    public void WeightsUnderAWrappersPrefixAreFoundAndTheirPretrainedKeySuggested()
    {
        using var scope = NewDisposeScope();
        var source = TimmDeitStateDict(depth: 2);
        using var backbone = new VisionTransformer(SmallDeitDet, seed: 3);

        // A DistributedDataParallel state dict saved bare: every key starts with module.
        var ddp = WriteOfficial(_dir, "ddp.safetensors", source.ToDictionary(kv => "module." + kv.Key, kv => kv.Value), entry: null);
        Assert.That(Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(backbone, ddp, ""))!.Message,
            Does.Contain("(module.cls_token, module.pos_embed, module.patch_embed.proj.weight, module.patch_embed.proj.bias, module.blocks.0.norm1.weight, …): "
                + "the backbone's weights are there under 'module.': set model.backbone.pretrained_key to \"module\" to read them"));
        // The same under the official entry "model".
        var ddpInModel = WriteOfficial(_dir, "ddp_model.safetensors", source.ToDictionary(kv => "module." + kv.Key, kv => kv.Value));
        Assert.That(Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(backbone, ddpInModel))!.Message,
            Does.Contain("pretrained_key to \"model.module\""));
        // An mmdet-style checkpoint: state_dict holds backbone., neck. and head weights, and there is no "model" entry.
        var mmdet = source.ToDictionary(kv => "backbone." + kv.Key, kv => kv.Value);
        mmdet["neck.conv.weight"] = zeros(4);
        var mmdetPath = WriteOfficial(_dir, "mmdet.safetensors", mmdet, entry: "state_dict");
        Assert.That(Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(backbone, mmdetPath))!.Message,
            Does.Contain("no weights under 'model'").And.Contain("pretrained_key to \"state_dict.backbone\""));

        var report = PretrainedWeights.LoadBackbone(backbone, mmdetPath, "state_dict.backbone");
        Assert.That(report.Loaded, Has.Count.EqualTo(3 + 2 * 12));
    }

    [Test]
    public void AClassTokenBackboneRefusesACheckpointWithoutOne()
    {
        using var scope = NewDisposeScope();
        var source = TimmDeitStateDict(depth: 2);
        source.Remove("cls_token");
        source["pos_embed"] = source["pos_embed"].narrow(1, 1, 16);
        var path = WriteOfficial(_dir, "no_cls.safetensors", source);
        using var classifier = new VisionTransformer(VimVariants.DeitTiny with { EmbedDim = Dim, Heads = 2, Depth = 2, ImageSize = 64 }, seed: 3);

        var error = Assert.Throws<VimException>(() => PretrainedWeights.LoadBackbone(classifier, path))!;
        Assert.That(error.Message, Does.Contain(path).And.Contain("no class token"));
    }
}

/// <summary>model.backbone.pretrained through SegmentationTask with a DeiT backbone.</summary>
public class SegmentationDeitPretrainedTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-segpretrained-").FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 2, ValImages = 1, Width = 64, Height = 64, Seed = 5,
        });
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>Segmentation of the demo ADE data under &lt;root&gt;/ade with a DeiT backbone initialised from <paramref name="pretrained"/>.</summary>
    internal static ExperimentConfig Config(string root, string pretrained) => new()
    {
        Task = TaskKind.Segmentation,
        Data = new DataConfig { Type = "ade20k", Root = Path.Combine(root, "ade"), CropSize = [32, 32], Scale = [64, 64], BatchSize = 2, NumWorkers = 0 },
        Model = new ModelConfig
        {
            NumClasses = DemoDatasetGenerator.ClassNames.Count,
            Backbone = new BackboneConfig { Name = "deitseg_tiny", Pretrained = pretrained },
        },
    };

    /// <summary>A two-block DeiT segmentor the checkpoints of <see cref="PretrainedDenseBackboneTests.TimmDeitStateDict"/> (depth 2) fit.</summary>
    internal static EncoderDecoder Small()
    {
        var deit = new VisionTransformer(VimVariants.DeitTiny with { EmbedDim = 32, Heads = 2, Depth = 2, ImageSize = 64, NumClasses = 0, TapBlocks = [0, 1, 1, 1] }, 1);
        return new EncoderDecoder(new SegmentationPyramid(deit), new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16 }, DemoDatasetGenerator.ClassNames.Count);
    }

    [Test]
    public void TheTaskLoadsADeitImageNetCheckpointIntoItsBackbone()
    {
        using var scope = NewDisposeScope();
        var source = PretrainedDenseBackboneTests.TimmDeitStateDict(depth: 2);
        var path = PretrainedDenseBackboneTests.WriteOfficial(_root, "deit_tiny_patch16_224-a1311bcf.safetensors", source);
        var config = Config(_root, path);
        var log = new StringWriter();

        using var task = new SegmentationTask(config, log, Small);

        var report = task.PretrainedReport!;
        Assert.That(report.Unexpected, Is.Empty, report.ToString());
        Assert.That(report.Ignored, Is.EquivalentTo(new[] { "head.weight", "head.bias" }));
        Assert.That(report.Missing, Has.None.StartWith("backbone.net."), "the whole backbone comes from the checkpoint");
        var state = task.Model.state_dict();
        Assert.That(state["backbone.net.cls_token"][0, 0, 7].item<float>(), Is.EqualTo(source["cls_token"][0, 0, 7].item<float>()));
        Assert.That(state["backbone.net.blocks.0.attn.proj.weight"][4, 9].item<float>(), Is.EqualTo(source["blocks.0.attn.proj.weight"][4, 9].item<float>()));
        Assert.That(log.ToString(), Does.Contain("pretrained backbone (deitseg_tiny)"));
    }
}
