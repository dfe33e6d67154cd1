using NUnit.Framework;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

public class ParameterGroupRulesTests
{
    private static (string, Parameter) P(string name, params long[] shape) => (name, new Parameter(zeros(shape)));

    [Test]
    public void LayerIdsFollowTheOfficialVimRule()
    {
        Assert.That(ParameterGroupRules.LayerId("pos_embed", 24), Is.EqualTo(0));
        Assert.That(ParameterGroupRules.LayerId("backbone.patch_embed.proj.weight", 24), Is.EqualTo(0));
        Assert.That(ParameterGroupRules.LayerId("cls_token", 24), Is.EqualTo(0));
        Assert.That(ParameterGroupRules.LayerId("layers.0.mixer.in_proj.weight", 24), Is.EqualTo(1));
        Assert.That(ParameterGroupRules.LayerId("backbone.layers.23.norm.weight", 24), Is.EqualTo(24));
        Assert.That(ParameterGroupRules.LayerId("blocks.11.attn.qkv.weight", 12), Is.EqualTo(12));
        Assert.That(ParameterGroupRules.LayerId("decode_head.conv_seg.weight", 24), Is.EqualTo(25));
        Assert.That(ParameterGroupRules.LayerId("norm_f.weight", 24), Is.EqualTo(25));
    }

    [Test]
    public void NoDecayCoversBiasesNormsEmbeddingsAndSsmParameters()
    {
        Assert.That(ParameterGroupRules.IsNoDecay("layers.0.mixer.in_proj.weight", zeros(4, 2)), Is.False);
        Assert.That(ParameterGroupRules.IsNoDecay("layers.0.mixer.conv1d.bias", zeros(4)), Is.True);
        Assert.That(ParameterGroupRules.IsNoDecay("layers.0.norm.weight", zeros(4)), Is.True);
        Assert.That(ParameterGroupRules.IsNoDecay("pos_embed", zeros(1, 5, 4)), Is.True);
        Assert.That(ParameterGroupRules.IsNoDecay("cls_token", zeros(1, 1, 4)), Is.True);
        Assert.That(ParameterGroupRules.IsNoDecay("layers.3.mixer.A_log", zeros(8, 16)), Is.True);
        Assert.That(ParameterGroupRules.IsNoDecay("layers.3.mixer.A_b_log", zeros(8, 16)), Is.True);
        Assert.That(ParameterGroupRules.IsNoDecay("layers.3.mixer.D_b", zeros(8)), Is.True);
        Assert.That(ParameterGroupRules.IsNoDecay("layers.3.mixer.dt_proj.weight", zeros(8, 2)), Is.False);
    }

    [Test]
    public void TheOfficialSegmentationScopeDecaysTheEmbeddingAlone()
    {
        // BEiT's constructor looks for backbone.blocks: Vim's backbone.layers fall to the heads' id (scale 1).
        Assert.That(ParameterGroupRules.LayerId("backbone.layers.3.mixer.in_proj.weight", 24, LayerDecayScope.Embeddings), Is.EqualTo(25));
        Assert.That(ParameterGroupRules.LayerId("backbone.pos_embed", 24, LayerDecayScope.Embeddings), Is.EqualTo(0));
        Assert.That(ParameterGroupRules.LayerId("backbone.patch_embed.proj.weight", 24, LayerDecayScope.Embeddings), Is.EqualTo(0));
        Assert.That(ParameterGroupRules.LayerId("decode_head.conv_seg.weight", 24, LayerDecayScope.Embeddings), Is.EqualTo(25));
    }

    [Test]
    public void BeitRuleExemptsOneDimensionalParametersAndBiasesOnly()
    {
        bool Exempt(string name, params long[] shape) => ParameterGroupRules.IsNoDecay(name, zeros(shape), NoDecayRule.Beit);
        Assert.That(Exempt("backbone.layers.0.mixer.conv1d.bias", 4), Is.True);
        Assert.That(Exempt("backbone.layers.0.mixer.D", 8), Is.True);
        Assert.That(Exempt("decode_head.conv_seg.bias", 5), Is.True);
        // Compared by full name, which the backbone. prefix never matches; A_log is 2-D.
        Assert.That(Exempt("backbone.pos_embed", 1, 5, 4), Is.False);
        Assert.That(Exempt("backbone.layers.0.mixer.A_log", 8, 16), Is.False);
        Assert.That(Exempt("backbone.layers.0.mixer.in_proj.weight", 8, 4), Is.False);
    }

    [Test]
    public void Detectron2RuleExemptsTorchNormLayersAndThePositionEmbeddingOnly()
    {
        using var model = new Vim.Core.Models.SimpleFeaturePyramid(new Vim.Core.Models.VisionTransformer(Vim.Core.Models.VimVariants.DeitDetTiny with
        {
            EmbedDim = 32, Heads = 2, Depth = 2, ImageSize = 64, DropPathRate = 0, WindowSize = 3, GlobalBlocks = [1],
        }, 1), outChannels: 16, seed: 2);
        var groups = ParameterGroupRules.Build(model, new OptimizerConfig { WeightDecay = 0.1, NoDecay = NoDecayRule.Detectron2 }, numLayers: 2);
        var decay = groups.SelectMany(g => g.Parameters.Select(p => (p.Name, g.WeightDecay))).ToDictionary(x => x.Name, x => x.WeightDecay);
        var exempt = decay.Where(kv => kv.Value == 0).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        // torch LayerNorm in the transformer blocks (norm1, norm2: weight and bias each) and pos_embed; not the pyramid's
        // channel LayerNorm2d, not any other bias.
        Assert.That(exempt, Is.EqualTo(new[]
        {
            "net.blocks.0.norm1.bias", "net.blocks.0.norm1.weight", "net.blocks.0.norm2.bias", "net.blocks.0.norm2.weight",
            "net.blocks.1.norm1.bias", "net.blocks.1.norm1.weight", "net.blocks.1.norm2.bias", "net.blocks.1.norm2.weight", "net.pos_embed",
        }.Select(n => n.Replace("net.", PrefixOf(decay.Keys), StringComparison.Ordinal)).Order(StringComparer.Ordinal)));
        Assert.That(decay.Keys.Where(n => n.EndsWith(".bias", StringComparison.Ordinal) && decay[n] > 0), Is.Not.Empty, "other biases decay");
    }

    /// <summary>The prefix under which the pyramid holds its backbone ("net." or the like), read from the names.</summary>
    private static string PrefixOf(IEnumerable<string> names) =>
        names.First(n => n.EndsWith("pos_embed", StringComparison.Ordinal))[..^"pos_embed".Length];

    [Test]
    public void GroupsCarryDecayAndLayerScales()
    {
        var parameters = new[]
        {
            P("pos_embed", 1, 5, 4), P("patch_embed.proj.weight", 4, 3, 2, 2), P("layers.0.mixer.in_proj.weight", 8, 4),
            P("layers.0.norm.weight", 4), P("layers.1.mixer.in_proj.weight", 8, 4), P("head.weight", 10, 4), P("head.bias", 10),
        };
        var groups = ParameterGroupRules.Build(parameters, new OptimizerConfig { WeightDecay = 0.05, LayerDecayRate = 0.5 }, numLayers: 2);
        var byParameter = groups.SelectMany(g => g.Parameters.Select(p => (p.Name, g))).ToDictionary(x => x.Name, x => x.g);
        // numLayers 2: scale = 0.5^(3 − id): id 0 → 0.125, id 1 → 0.25, id 2 → 0.5, id 3 (head) → 1.
        Assert.That(byParameter["pos_embed"].LrScale, Is.EqualTo(0.125));
        Assert.That(byParameter["pos_embed"].WeightDecay, Is.EqualTo(0.0));
        Assert.That(byParameter["patch_embed.proj.weight"].LrScale, Is.EqualTo(0.125));
        Assert.That(byParameter["patch_embed.proj.weight"].WeightDecay, Is.EqualTo(0.05));
        Assert.That(byParameter["layers.0.mixer.in_proj.weight"].LrScale, Is.EqualTo(0.25));
        Assert.That(byParameter["layers.0.norm.weight"].WeightDecay, Is.EqualTo(0.0));
        Assert.That(byParameter["layers.1.mixer.in_proj.weight"].LrScale, Is.EqualTo(0.5));
        Assert.That(byParameter["head.weight"].LrScale, Is.EqualTo(1.0));
        Assert.That(byParameter["head.bias"].WeightDecay, Is.EqualTo(0.0));
        Assert.That(groups.Sum(g => g.Parameters.Count), Is.EqualTo(parameters.Length));
    }

    /// <summary>
    /// optimizer.custom_keys (mmengine's paramwise_cfg.custom_keys): the longest key a name contains wins (layers.1 over
    /// layers), lr_mult multiplies the layer-decay scale and decay_mult the no_decay rule's weight decay; hand-computed.
    /// </summary>
    [Test]
    public void CustomKeysMultiplyTheLayerScaleAndTheRulesWeightDecay()
    {
        var config = new OptimizerConfig
        {
            WeightDecay = 0.1, LayerDecayRate = 0.5,
            CustomKeys = new()
            {
                ["layers"] = new CustomKeyConfig { LrMult = 2, DecayMult = 3 },
                ["layers.1"] = new CustomKeyConfig { LrMult = 0.25 },
                ["head"] = new CustomKeyConfig { DecayMult = 0.5 },
            },
        };
        Assert.That(ParameterGroupRules.CustomKeyOf("layers.1.weight", config), Is.EqualTo("layers.1"));
        Assert.That(ParameterGroupRules.CustomKeyOf("layers.0.weight", config), Is.EqualTo("layers"));
        Assert.That(ParameterGroupRules.CustomKeyOf("patch_embed.weight", config), Is.Null);
        var groups = ParameterGroupRules.Build(
            [P("patch_embed.weight", 4, 3), P("layers.0.weight", 4, 4), P("layers.0.bias", 4), P("layers.1.weight", 4, 4), P("head.weight", 1, 4), P("head.bias", 1)],
            config, numLayers: 2);
        var byParameter = groups.SelectMany(g => g.Parameters.Select(p => (Parameter: p.Name, g.LrScale, g.WeightDecay, g.Name))).ToDictionary(p => p.Parameter);
        // Layer ids 0 (embedding), 1, 2 (blocks), 3 (head): scales 0.5³, 0.5², 0.5, 1.
        Assert.That(byParameter["patch_embed.weight"].LrScale, Is.EqualTo(0.125));
        Assert.That(byParameter["patch_embed.weight"].WeightDecay, Is.EqualTo(0.1));
        Assert.That(byParameter["layers.0.weight"].LrScale, Is.EqualTo(0.25 * 2));
        Assert.That(byParameter["layers.0.weight"].WeightDecay, Is.EqualTo(0.1 * 3).Within(1e-15));
        Assert.That(byParameter["layers.0.bias"].LrScale, Is.EqualTo(0.25 * 2));
        Assert.That(byParameter["layers.0.bias"].WeightDecay, Is.EqualTo(0.0), "an exempt bias stays exempt under decay_mult 3");
        Assert.That(byParameter["layers.1.weight"].LrScale, Is.EqualTo(0.5 * 0.25));
        Assert.That(byParameter["layers.1.weight"].WeightDecay, Is.EqualTo(0.1), "layers.1 leaves decay_mult at 1; layers' 3 does not apply");
        Assert.That(byParameter["head.weight"].LrScale, Is.EqualTo(1.0));
        Assert.That(byParameter["head.weight"].WeightDecay, Is.EqualTo(0.05));
        Assert.That(byParameter["layers.1.weight"].Name, Is.EqualTo("layer2_decay_layers.1"));
        Assert.That(groups.Select(g => g.Name), Is.Unique);
    }

    [Test]
    public void ACustomKeyThatMatchesNoParameterIsRefusedByName()
    {
        var config = new OptimizerConfig { CustomKeys = new() { ["backbon.layers"] = new CustomKeyConfig { LrMult = 0.1 } } };
        var error = Assert.Throws<Vim.Core.VimException>(() => ParameterGroupRules.Build([P("backbone.layers.0.weight", 4, 4)], config, numLayers: 1))!;
        Assert.That(error.Message, Does.StartWith("optimizer.custom_keys.backbon.layers matches no parameter").And.Contain("backbone.layers.0.weight"));
        config.CustomKeys["backbone"] = new CustomKeyConfig { LrMult = -1 };
        config.CustomKeys.Remove("backbon.layers");
        var settings = new ExperimentConfig { Optimizer = config };
        Assert.That(Assert.Throws<Vim.Core.VimException>(() => TrainingSettings.Check(settings))!.Message, Does.Contain("optimizer.custom_keys.backbone.lr_mult"));
    }
}
