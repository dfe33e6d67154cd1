using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Models;
using Vim.Segmentation;

namespace Vim.Tests.Core;

/// <summary>model.backbone.img_size, drop_path_rate, out_indices and with_cp change the backbone a task builds.</summary>
public class BackboneOverridesTests
{
    private static ExperimentConfig SegmentationConfig(BackboneConfig backbone) => new()
    {
        Task = TaskKind.Segmentation,
        Model = new ModelConfig { Backbone = backbone, NumClasses = 5, SegHead = new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16 } },
    };

    private static VisionMamba VimInside(TorchSharp.torch.nn.Module model) =>
        model.modules().OfType<VisionMamba>().Single();

    [Test]
    public void ConfigSettingsReachTheBackboneTheSegmentationTaskBuilds()
    {
        using var model = EncoderDecoder.FromConfig(SegmentationConfig(new BackboneConfig
        {
            Name = "vimseg_tiny", ImgSize = 256, DropPathRate = 0.2, OutIndices = [3, 9, 15, 21],
        }), seed: 0);
        var vim = VimInside(model);
        Assert.That(vim.Config.TapBlocks, Is.EqualTo(new[] { 3, 9, 15, 21 }));
        // 256 / 16 = 16 × 16 positions (no class token in the segmentation backbone).
        var posEmbed = model.named_parameters().Single(p => p.name.EndsWith("pos_embed", StringComparison.Ordinal)).parameter;
        Assert.That(posEmbed.shape, Is.EqualTo(new long[] { 1, 256, 192 }));
        // The official schedule: block i drops with [0, linspace(0, rate, depth)...][i], so block 23 with 0.2·22/23.
        Assert.That(vim.Layers[0].DropPathRate, Is.EqualTo(0.0));
        Assert.That(vim.Layers[23].DropPathRate, Is.EqualTo(0.2 * 22 / 23).Within(1e-12));
    }

    [Test]
    public void UnsetKeysKeepTheRegisteredBackbone()
    {
        using var model = EncoderDecoder.FromConfig(SegmentationConfig(new BackboneConfig { Name = "vimseg_tiny" }), seed: 0);
        var vim = VimInside(model);
        Assert.That((vim.Config.ImageSize, vim.Config.DropPathRate), Is.EqualTo((VimVariants.SegTiny.ImageSize, VimVariants.SegTiny.DropPathRate)));
        Assert.That(vim.Config.TapBlocks, Is.EqualTo(VimVariants.SegTiny.TapBlocks));
    }

    /// <summary>model.backbone.pos_embed_resize reaches the Vim config the pretrained loader reads, and DeiT refuses it.</summary>
    [Test]
    public void PosEmbedResizeRuleReachesTheVimBackbone()
    {
        var config = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs/seg/upernet_vim_tiny_demo_ade.yaml"),
            ["model.backbone.pos_embed_resize=official_first_slot"]).Config;
        Assert.That(config.Model.Backbone.PosEmbedResize, Is.EqualTo(PosEmbedResizeRule.OfficialFirstSlot));
        using (var model = EncoderDecoder.FromConfig(config, seed: 0))
            Assert.That(VimInside(model).Config.PosEmbedResize, Is.EqualTo(PosEmbedResizeRule.OfficialFirstSlot));
        var deit = BackboneOverrides.From(new BackboneConfig { Name = "deit_tiny", PosEmbedResize = PosEmbedResizeRule.ClassSlotAware });
        var e = Assert.Throws<VimException>(() => ModelRegistry.Create("deit_tiny", 0, deit).Dispose())!;
        Assert.That(e.Message, Does.StartWith("model.backbone.pos_embed_resize applies to Vim backbones"));
    }

    /// <summary>with_cp reaches every registered backbone the dense tasks build, Vim and DeiT; off unless set.</summary>
    [TestCase("vimdet_tiny")]
    [TestCase("vimdet_small")]
    [TestCase("vimseg_tiny")]
    [TestCase("vimseg_small")]
    [TestCase("deitdet_tiny")]
    [TestCase("deitseg_tiny")]
    [TestCase("deitseg_small")]
    public void WithCpReachesEveryDenseBackbone(string name)
    {
        foreach (bool withCp in new[] { false, true })
        {
            using var model = ModelRegistry.Create(name, 0, BackboneOverrides.From(new BackboneConfig { Name = name, WithCp = withCp }));
            bool actual = model.modules().OfType<VisionMamba>().Select(v => v.Config.ActivationCheckpointing)
                .Concat(model.modules().OfType<VisionTransformer>().Select(v => v.Config.ActivationCheckpointing)).Single();
            Assert.That(actual, Is.EqualTo(withCp));
        }
    }

    [Test]
    public void WithCpIsReadFromTheConfig()
    {
        var path = Path.Combine(RepositoryPaths.Root, "configs/seg/upernet_vim_tiny_demo_ade.yaml");
        Assert.That(ExperimentConfig.Load(path).Config.Model.Backbone.WithCp, Is.False, "off by default");
        var config = ExperimentConfig.Load(path, ["model.backbone.with_cp=true"]).Config;
        using var model = EncoderDecoder.FromConfig(config, seed: 0);
        Assert.That(VimInside(model).Config.ActivationCheckpointing, Is.True);
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(path, ["model.backbone.with_cp=sometimes"]))!;
        Assert.That(e.Message, Does.Contain("model.backbone.with_cp"));
    }

    /// <summary>recompute_in_proj reaches every mixer of the Vim backbones a config builds, detection's and segmentation's,
    /// off unless set; DeiT, which has no in_proj, refuses it naming the key.</summary>
    [TestCase("configs/seg/upernet_vim_tiny_demo_ade.yaml")]
    [TestCase("configs/det/cascade_mask_rcnn_vim_tiny_demo_coco.yaml")]
    public void RecomputeInProjReachesEveryMixer(string relativePath)
    {
        var path = Path.Combine(RepositoryPaths.Root, relativePath);
        Assert.That(ExperimentConfig.Load(path).Config.Model.Backbone.RecomputeInProj, Is.False, "off by default");
        foreach (bool on in new[] { false, true })
        {
            var backbone = ExperimentConfig.Load(path, [$"model.backbone.recompute_in_proj={(on ? "true" : "false")}"]).Config.Model.Backbone;
            using var model = ModelRegistry.Create(backbone.Name, 0, BackboneOverrides.From(backbone));
            var mixers = model.modules().OfType<BiMambaMixer>().ToList();
            Assert.That(mixers, Has.Count.EqualTo(24));
            Assert.That(mixers.Select(m => m.RecomputeInputProjection), Is.All.EqualTo(on));
        }
        var deit = BackboneOverrides.From(new BackboneConfig { Name = "deitseg_tiny", RecomputeInProj = true });
        var e = Assert.Throws<VimException>(() => ModelRegistry.Create("deitseg_tiny", 0, deit).Dispose())!;
        Assert.That(e.Message, Does.StartWith("model.backbone.recompute_in_proj applies to Vim backbones"));
    }

    [TestCase("vimseg_tiny", 500, null, null, "model.backbone.img_size must be a positive multiple of the patch size 16, got 500")]
    [TestCase("vimseg_tiny", null, 1.0, null, "model.backbone.drop_path_rate must be in [0, 1), got 1")]
    [TestCase("vimseg_tiny", null, -0.1, null, "model.backbone.drop_path_rate must be in [0, 1), got -0.1")]
    [TestCase("vimseg_tiny", null, null, new[] { 5, 11, 17 }, "model.backbone.out_indices must name 4 blocks, one per pyramid level, got [5, 11, 17]")]
    [TestCase("vimseg_tiny", null, null, new[] { 11, 5, 17, 23 }, "model.backbone.out_indices must rise from the shallowest level to the deepest, got [11, 5, 17, 23]")]
    [TestCase("vimseg_tiny", null, null, new[] { 5, 11, 17, 24 }, "model.backbone.out_indices: block 24 is outside 0..23 (the backbone has 24 blocks)")]
    [TestCase("vimdet_tiny", null, null, new[] { 5, 11, 17, 23 }, "model.backbone.out_indices is [5, 11, 17, 23], but this backbone takes no intermediate features")]
    [TestCase("vim_tiny_stride8", 230, null, null, "model.backbone.img_size must be 16 plus a multiple of the stride 8, got 230")]
    public void ImpossibleSettingsAreRefusedNamingTheKey(string name, int? imgSize, double? dropPath, int[]? outIndices, string expected)
    {
        var overrides = BackboneOverrides.From(new BackboneConfig { Name = name, ImgSize = imgSize, DropPathRate = dropPath, OutIndices = outIndices?.ToList() });
        var e = Assert.Throws<VimException>(() => ModelRegistry.Create(name, 0, overrides).Dispose())!;
        Assert.That(e.Message, Does.StartWith(expected));
    }
}
