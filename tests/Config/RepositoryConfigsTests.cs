using NUnit.Framework;
using Vim.Core.Config;

namespace Vim.Tests.Config;

/// <summary>Every config shipped in configs/ must load and type-check.</summary>
public class RepositoryConfigsTests
{
    public static IEnumerable<string> ShippedConfigs()
    {
        var root = RepositoryPaths.Root;
        return Directory.EnumerateFiles(Path.Combine(root, "configs"), "*.yaml", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}_base_{Path.DirectorySeparatorChar}"))
            .Select(p => Path.GetRelativePath(root, p))
            .OrderBy(p => p, StringComparer.Ordinal);
    }

    [TestCaseSource(nameof(ShippedConfigs))]
    public void ShippedConfigLoads(string relativePath)
    {
        var (config, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, relativePath));
        Assert.That(config.Schedule.MaxIters, Is.GreaterThan(0));
    }

    [Test]
    public void OfficialSegmentationRecipeIsWhatTheTinyConfigSays()
    {
        var (config, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs/seg/upernet_vim_tiny_512_60k_ade20k.yaml"));
        Assert.That(config.Task, Is.EqualTo(TaskKind.Segmentation));
        Assert.That(config.Optimizer.Type, Is.EqualTo(OptimizerKind.AdamW));
        Assert.That(config.Optimizer.Lr, Is.EqualTo(2e-4));
        Assert.That(config.Optimizer.WeightDecay, Is.EqualTo(0.1));
        Assert.That(config.Optimizer.LayerDecayRate, Is.EqualTo(0.92));
        Assert.That(config.Schedule.Policy, Is.EqualTo(LrPolicy.Poly));
        Assert.That(config.Schedule.WarmupIters, Is.EqualTo(1500));
        Assert.That(config.Schedule.MaxIters, Is.EqualTo(60000));
        Assert.That(config.Model.Backbone.OutIndices, Is.EqualTo(new[] { 5, 11, 17, 23 }));
    }

    /// <summary>
    /// The official small detection config is the tiny one's recipe with D 384 (cascade_mask_rcnn_vimdet_s_100ep.py
    /// and _t_100ep_adj1.py both set depth 24 and layer decay 0.837 on the same base): ours differ in the backbone and
    /// its checkpoint alone.
    /// </summary>
    [Test]
    public void TheSmallDetectionConfigIsTheTinyRecipeWithTheSmallBackbone()
    {
        ExperimentConfig Load(string name) => ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "det", name)).Config;
        var tiny = Load("cascade_mask_rcnn_vim_tiny_1024_100ep_coco.yaml");
        var small = Load("cascade_mask_rcnn_vim_small_1024_100ep_coco.yaml");
        Assert.That(small.Model.Backbone.Name, Is.EqualTo("vimdet_small"));
        Assert.That(small.Model.Backbone.Pretrained, Does.EndWith("vim_s_midclstok_80p5acc.pth"));
        small.Model.Backbone.Name = tiny.Model.Backbone.Name;
        small.Model.Backbone.Pretrained = tiny.Model.Backbone.Pretrained;
        Assert.That(ConfigWriter.ToYaml(ConfigBinder.ToNode(small)), Is.EqualTo(ConfigWriter.ToYaml(ConfigBinder.ToNode(tiny))));
    }

    /// <summary>
    /// Each Mask R-CNN config is its Cascade Mask R-CNN config with ViTDet's Mask R-CNN box head
    /// (mask_rcnn_vitdet_b_100ep.py's StandardROIHeads: one stage matched at IoU 0.5, box weights (10, 10, 5, 5),
    /// class-specific deltas) and nothing else changed.
    /// </summary>
    [TestCase("1024_100ep")]
    [TestCase("demo")]
    public void EachMaskRcnnConfigIsItsCascadeRecipeWithOneClassSpecificStage(string recipe)
    {
        ExperimentConfig Load(string name) => ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "det", name)).Config;
        var cascade = Load($"cascade_mask_rcnn_vim_tiny_{recipe}_coco.yaml");
        var maskRcnn = Load($"mask_rcnn_vim_tiny_{recipe}_coco.yaml");
        Assert.That(maskRcnn.Model.DetHead.StageIouThresholds, Is.EqualTo(new[] { 0.5 }));
        Assert.That(maskRcnn.Model.DetHead.StageBoxWeights, Is.EqualTo(new[] { new[] { 10.0, 10, 5, 5 } }));
        Assert.That(maskRcnn.Model.DetHead.ClsAgnosticBboxReg, Is.False);
        Assert.That(cascade.Model.DetHead.StageIouThresholds, Is.EqualTo(new[] { 0.5, 0.6, 0.7 }));
        Assert.That(cascade.Model.DetHead.ClsAgnosticBboxReg, Is.True);
        maskRcnn.Model.DetHead.StageIouThresholds = cascade.Model.DetHead.StageIouThresholds;
        maskRcnn.Model.DetHead.StageBoxWeights = cascade.Model.DetHead.StageBoxWeights;
        maskRcnn.Model.DetHead.ClsAgnosticBboxReg = cascade.Model.DetHead.ClsAgnosticBboxReg;
        Assert.That(ConfigWriter.ToYaml(ConfigBinder.ToNode(maskRcnn)), Is.EqualTo(ConfigWriter.ToYaml(ConfigBinder.ToNode(cascade))));
    }

    /// <summary>
    /// Each DeiT segmentation baseline is its Vim config's recipe (heads, data, schedule, optimiser) with DeiT's backbone:
    /// its taps (blocks 3/5/7/11 of 12), its checkpoint, and layer decay over its blocks (the official constructor finds
    /// DeiT's blocks, where it misses Vim's layers).
    /// </summary>
    [TestCase("tiny")]
    [TestCase("small")]
    public void EachDeitSegmentationConfigIsItsVimRecipeWithTheDeitBackbone(string size)
    {
        ExperimentConfig Load(string name) => ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "seg", name)).Config;
        var vim = Load($"upernet_vim_{size}_512_60k_ade20k.yaml");
        var deit = Load($"upernet_deit_{size}_512_60k_ade20k.yaml");
        Assert.That(deit.Model.Backbone.Name, Is.EqualTo($"deitseg_{size}"));
        Assert.That(deit.Model.Backbone.OutIndices, Is.EqualTo(new[] { 3, 5, 7, 11 }));
        Assert.That(deit.Optimizer.LayerDecayScope, Is.EqualTo(LayerDecayScope.Blocks));
        deit.Model.Backbone.Name = vim.Model.Backbone.Name;
        deit.Model.Backbone.OutIndices = vim.Model.Backbone.OutIndices;
        deit.Model.Backbone.Pretrained = vim.Model.Backbone.Pretrained;
        deit.Optimizer.LayerDecayScope = vim.Optimizer.LayerDecayScope;
        Assert.That(ConfigWriter.ToYaml(ConfigBinder.ToNode(deit)), Is.EqualTo(ConfigWriter.ToYaml(ConfigBinder.ToNode(vim))));
    }

    /// <summary>
    /// Every config key docs/FROM_MMDETECTION.md names in our column (`section.key…` in backticks, values after a colon
    /// or an equals sign left aside) is a key of the schema: the guide cannot drift from the code unnoticed.
    /// </summary>
    [Test]
    public void TheMigrationGuideNamesOnlyKeysOfTheSchema()
    {
        // Our column: the last cell of each table row (the first names OpenMMLab's keys, some under the same section names).
        var guide = string.Join("\n", File.ReadAllLines(Path.Combine(RepositoryPaths.Root, "docs", "FROM_MMDETECTION.md"))
            .Where(line => line.StartsWith("| ", StringComparison.Ordinal)).Select(line => line.Split(" | ")[^1]));
        var root = (ConfigMap)ConfigBinder.ToNode(new ExperimentConfig());
        var sections = root.Keys.ToHashSet();
        var named = System.Text.RegularExpressions.Regex.Matches(guide, @"`([a-z_]+(?:\.[a-z_0-9]+)+)")
            .Select(m => m.Groups[1].Value)
            .Where(path => sections.Contains(path.Split('.')[0]))
            .Distinct().ToList();
        Assert.That(named, Has.Count.GreaterThan(30), "the guide's keys were found");
        foreach (var path in named)
        {
            ConfigNode? node = root;
            foreach (var key in path.Split('.')) node = (node as ConfigMap)?[key];
            Assert.That(node, Is.Not.Null, $"docs/FROM_MMDETECTION.md names {path}, which the schema lacks");
        }
    }
}
