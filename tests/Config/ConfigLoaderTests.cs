using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;

namespace Vim.Tests.Config;

public class ConfigLoaderTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "vimdense-config-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string yaml)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, yaml);
        return path;
    }

    [Test]
    public void BasesMergeInOrderDictsMergeListsReplaceAndTheIncludingFileWins()
    {
        Write("a.yaml", "optimizer:\n  lr: 0.1\n  betas: [0.1, 0.2]\nschedule:\n  max_iters: 10\n");
        Write("sub/b.yaml", "optimizer:\n  lr: 0.2\n  weight_decay: 0.5\n");
        var top = Write("top.yaml", "_base_: [a.yaml, sub/b.yaml]\noptimizer:\n  betas: [0.8]\n");

        var (config, tree) = ExperimentConfig.Load(top);

        Assert.That(config.Optimizer.Lr, Is.EqualTo(0.2), "the later base wins over the earlier");
        Assert.That(config.Optimizer.WeightDecay, Is.EqualTo(0.5));
        Assert.That(config.Optimizer.Betas, Is.EqualTo(new[] { 0.8 }), "lists replace, they do not merge");
        Assert.That(config.Schedule.MaxIters, Is.EqualTo(10), "keys only in a base survive");
        Assert.That(tree.Keys, Does.Not.Contain("_base_"));
    }

    [Test]
    public void DeleteMarkerReplacesTheInheritedMapping()
    {
        Write("a.yaml", "optimizer:\n  lr: 0.1\n  weight_decay: 0.3\n");
        var top = Write("top.yaml", "_base_: a.yaml\noptimizer:\n  _delete_: true\n  lr: 0.7\n");
        var (config, _) = ExperimentConfig.Load(top);
        Assert.That(config.Optimizer.Lr, Is.EqualTo(0.7));
        Assert.That(config.Optimizer.WeightDecay, Is.EqualTo(new OptimizerConfig().WeightDecay), "the base's value is gone");
    }

    /// <summary>Where nothing is inherited the marker has nothing to replace and is dropped, as MMEngine pops it.</summary>
    [Test]
    public void DeleteMarkerWithNothingInheritedIsDropped()
    {
        var alone = Write("alone.yaml", "optimizer:\n  _delete_: true\n  lr: 0.7\n");
        Assert.That(ExperimentConfig.Load(alone).Config.Optimizer.Lr, Is.EqualTo(0.7));
        Write("b.yaml", "optimizer:\n  lr: 0.1\n");
        var nested = Write("nested.yaml", "_base_: b.yaml\nmodel:\n  _delete_: true\n  backbone:\n    _delete_: true\n    drop_path_rate: 0.2\n" +
            "optimizer:\n  _delete_: false\n  weight_decay: 0.3\n");
        var (config, tree) = ExperimentConfig.Load(nested);
        Assert.That(config.Model.Backbone.DropPathRate, Is.EqualTo(0.2));
        Assert.That(config.Optimizer.Lr, Is.EqualTo(0.1), "_delete_: false merges");
        Assert.That(config.Optimizer.WeightDecay, Is.EqualTo(0.3));
        Assert.That(ConfigWriter.ToYaml(tree), Does.Not.Contain("_delete_"));
    }

    [Test]
    public void OverridesAreTypeCheckedAndParsedAsYaml()
    {
        var top = Write("top.yaml", "optimizer:\n  lr: 0.1\n");
        var (config, _) = ExperimentConfig.Load(top, ["optimizer.lr=2e-4", "optimizer.betas=[0.5, 0.6]", "model.backbone.pretrained=null", "task=detection"]);
        Assert.That(config.Optimizer.Lr, Is.EqualTo(2e-4));
        Assert.That(config.Optimizer.Betas, Is.EqualTo(new[] { 0.5, 0.6 }));
        Assert.That(config.Model.Backbone.Pretrained, Is.Null);
        Assert.That(config.Task, Is.EqualTo(TaskKind.Detection));

        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top, ["schedule.max_iters=12.5"]))!;
        Assert.That(e.Message, Does.Contain("--set schedule.max_iters=12.5").And.Contain("'schedule.max_iters' must be an integer"));

        // An empty value is YAML's empty value, null, as in a file: it clears an optional key rather than becoming a mapping.
        var withPretrained = Write("pretrained.yaml", "model:\n  backbone:\n    pretrained: a.pth\n");
        Assert.That(ExperimentConfig.Load(withPretrained, ["model.backbone.pretrained="]).Config.Model.Backbone.Pretrained, Is.Null);
        Assert.That(ExperimentConfig.Load(withPretrained, ["model.backbone.drop_path_rate= "]).Config.Model.Backbone.DropPathRate, Is.Null);
        // The empty string needs YAML's quotes, as a config comment tells: --set 'model.backbone.pretrained_key=""'.
        Assert.That(ExperimentConfig.Load(withPretrained, ["model.backbone.pretrained_key=\"\""]).Config.Model.Backbone.PretrainedKey, Is.EqualTo(""));
    }

    /// <summary>
    /// A param_scheduler entry is reached as MMEngine's --cfg-options reach one, by a dotted index; an index past the list,
    /// or Python's subscript, is refused with the list's length and the dotted form rather than "not a mapping".
    /// </summary>
    [Test]
    public void OverridesReachListEntriesByDottedIndexAndNameTheListWhenTheIndexIsWrong()
    {
        var top = Write("top.yaml", """
            schedule:
              max_iters: 30
              param_scheduler:
                - {type: LinearLR, start_factor: 1.0e-6, by_epoch: false, begin: 0, end: 10}
                - {type: PolyLR, eta_min: 0.0, power: 1.0, begin: 10, by_epoch: false}
            """);
        var entry = (ConfigMap)ExperimentConfig.Load(top, ["schedule.param_scheduler.1.power=0.9"]).Config.Schedule.ParamScheduler!.Items[1];
        Assert.That(((ConfigScalar)entry["power"]!).Value, Is.EqualTo("0.9"));

        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top, ["schedule.param_scheduler.5.power=0.9"]))!;
        Assert.That(e.Message, Is.EqualTo("--set schedule.param_scheduler.5.power=0.9: 'schedule.param_scheduler' is a list of 2 entries, " +
            "addressed by index 0 to 1 ('schedule.param_scheduler.0.KEY=VALUE'), not '5'"));
        e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top, ["schedule.param_scheduler.2={type: PolyLR}"]))!;
        Assert.That(e.Message, Does.Contain("'schedule.param_scheduler' is a list of 2 entries").And.Contain("not '2'"));
        e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top, ["schedule.param_scheduler[1].power=0.9"]))!;
        Assert.That(e.Message, Is.EqualTo("--set schedule.param_scheduler[1].power=0.9: a list entry is addressed by a dotted index, " +
            "as MMEngine's --cfg-options: --set schedule.param_scheduler.1.power=0.9"));
    }

    /// <summary>
    /// A dotted index into a list the config leaves unset (model.seg_head.losses is null unless written) is refused naming
    /// the unset list, where it used to become a mapping keyed "0" that the schema refused as "must be a list, got a mapping".
    /// </summary>
    [Test]
    public void OverrideIndexingAnUnsetListNamesTheListAsUnset()
    {
        var top = Write("seg.yaml", "task: segmentation\nmodel:\n  num_classes: 5\n  seg_head:\n    channels: 16\n    losses: null\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top, ["model.seg_head.losses.0.weight=1"]))!;
        Assert.That(e.Message, Is.EqualTo("--set model.seg_head.losses.0.weight=1: 'model.seg_head.losses' is not set (null or absent) here, " +
            "so it has no entry 0 to address; set the whole list, e.g. --set 'model.seg_head.losses=[...]'"));
        // Absent from the file altogether, and with the index as the last segment.
        e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top, ["model.seg_test.crop_size.1=64"]))!;
        Assert.That(e.Message, Does.StartWith("--set model.seg_test.crop_size.1=64: 'model.seg_test.crop_size' is not set (null or absent) here, so it has no entry 1"));
        // Once the list is written, the same override reaches its entry.
        var losses = ExperimentConfig.Load(top, ["model.seg_head.losses=[{type: dice}]", "model.seg_head.losses.0.weight=3"]).Config.Model.SegHead.Losses;
        Assert.That(losses!.Single().Weight, Is.EqualTo(3.0));
    }

    /// <summary>A setting only the other task reads would be ignored: it is refused with where it was written.</summary>
    [Test]
    public void SettingsOfTheOtherTaskAreRefusedWhereTheyAreWritten()
    {
        var detection = Write("det.yaml", "task: detection\nmodel:\n  num_classes: 3\n  seg_head:\n    channels: 16\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(detection))!;
        Assert.That(e.Message, Does.EndWith("det.yaml:4: model.seg_head is a segmentation setting, but the config's task is detection, which never reads it; remove it (or set task)"));
        var plain = Write("det2.yaml", "task: detection\n");
        e = Assert.Throws<VimException>(() => ExperimentConfig.Load(plain, ["data.scale=[64, 64]"]))!;
        Assert.That(e.Message, Does.StartWith("--set data.scale=[64, 64]: data.scale is a segmentation setting"));
        var segmentation = Write("seg.yaml", "task: segmentation\nmodel:\n  det_head:\n    mask_on: false\n");
        e = Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation))!;
        Assert.That(e.Message, Does.Contain("seg.yaml:3: model.det_head is a detection setting, but the config's task is segmentation"));
        Assert.That(ExperimentConfig.Load(plain, ["model.det_head.mask_on=false"]).Config.Model.DetHead.MaskOn, Is.False);
        // Defaults change nothing and pass: a work dir's config.yaml lists every section.
        var dumped = Write("dumped.yaml", ConfigWriter.ToYaml(ConfigBinder.ToNode(new ExperimentConfig { Task = TaskKind.Detection })));
        Assert.That(ExperimentConfig.Load(dumped).Config.Task, Is.EqualTo(TaskKind.Detection));
    }

    [Test]
    public void UnknownKeyNamesFileLinePathAndClosestValidKey()
    {
        var top = Write("top.yaml", "model:\n  backbone:\n    name: vim_tiny\n    drop_path_rat: 0.2\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top))!;
        Assert.That(e.Message, Does.Contain("top.yaml:4"));
        Assert.That(e.Message, Does.Contain("unknown key 'model.backbone.drop_path_rat'"));
        Assert.That(e.Message, Does.Contain("did you mean 'model.backbone.drop_path_rate'"));
    }

    [Test]
    public void UnknownKeyInABaseNamesTheBaseFile()
    {
        Write("base.yaml", "schedule:\n  warmup: 5\n");
        var top = Write("top.yaml", "_base_: base.yaml\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top))!;
        Assert.That(e.Message, Does.Contain("base.yaml:2").And.Contain("'schedule.warmup'").And.Contain("did you mean 'schedule.warmup_iters'"));
    }

    [Test]
    public void WrongTypeNamesFileAndKey()
    {
        var top = Write("top.yaml", "schedule:\n  max_iters: '100'\n  policy: cosin\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top))!;
        Assert.That(e.Message, Does.Contain("top.yaml:2").And.Contain("'schedule.max_iters' must be an integer, got the quoted string '100'"));

        var top2 = Write("top2.yaml", "schedule:\n  policy: cosin\n");
        var e2 = Assert.Throws<VimException>(() => ExperimentConfig.Load(top2))!;
        Assert.That(e2.Message, Does.Contain("top2.yaml:2").And.Contain("did you mean 'cosine'"));

        var top3 = Write("top3.yaml", "optimizer:\n  betas: 0.9\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(top3))!.Message,
            Does.Contain("'optimizer.betas' must be a list, got '0.9'"));
    }

    [Test]
    public void MissingBaseFileNamesTheIncludingFileAndTheMissingPath()
    {
        var top = Write("top.yaml", "_base_:\n  - nowhere/missing.yaml\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(top))!;
        Assert.That(e.Message, Does.Contain("top.yaml:2").And.Contain("_base_ file not found").And.Contain("missing.yaml"));
    }

    [Test]
    public void CyclicBasesAreReportedWithTheChain()
    {
        Write("a.yaml", "_base_: b.yaml\n");
        Write("b.yaml", "_base_: c.yaml\n");
        Write("c.yaml", "_base_: a.yaml\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(Path.Combine(_dir, "a.yaml")))!;
        Assert.That(e.Message, Does.Contain("cyclic _base_"));
        Assert.That(e.Message, Does.Match("a\\.yaml -> .*b\\.yaml -> .*c\\.yaml -> .*a\\.yaml"));
    }

    [Test]
    public void DuplicateKeysAndInvalidYamlAreErrorsWithLines()
    {
        var dup = Write("dup.yaml", "runtime:\n  seed: 1\n  seed: 2\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(dup))!.Message, Does.Contain("dup.yaml:3").And.Contain("uplicate key").And.Contain("seed"));
        var bad = Write("bad.yaml", "runtime: [1, 2\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(bad))!.Message, Does.Contain("bad.yaml").And.Contain("invalid YAML"));
        // A flow sequence broken so that the YAML library throws InvalidOperationException rather than a YamlException.
        var broken = Write("broken.yaml", "model:\n  backbone:\n    out_indices: [5, 11, 17,: [5, 11, 17, 23]\n    img_size: 512\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(broken))!.Message,
            Does.Contain("broken.yaml: invalid YAML").And.Contain("unbalanced [ ]"));
    }

    [Test]
    public void WrittenYamlReadsBackToTheSameConfig()
    {
        var top = Write("top.yaml", "optimizer:\n  lr: 3.0e-5\n  grad_clip_norm: 1.5\nruntime:\n  work_dir: 'work dirs/x: y'\nmodel:\n  backbone:\n    out_indices: [1, 2]\n");
        var (config, _) = ExperimentConfig.Load(top);
        var yaml = ConfigWriter.ToYaml(ConfigBinder.ToNode(config));
        var again = Write("again.yaml", yaml);
        var (reloaded, _) = ExperimentConfig.Load(again);
        Assert.That(ConfigWriter.ToYaml(ConfigBinder.ToNode(reloaded)), Is.EqualTo(yaml));
        Assert.That(reloaded.Runtime.WorkDir, Is.EqualTo("work dirs/x: y"));
        Assert.That(reloaded.Optimizer.Lr, Is.EqualTo(3.0e-5));
        Assert.That(reloaded.Optimizer.GradClipNorm, Is.EqualTo(1.5));
        Assert.That(reloaded.Model.Backbone.OutIndices, Is.EqualTo(new[] { 1, 2 }));
    }

    [Test]
    public void ClosestMatchUsesEditDistance()
    {
        Assert.That(ClosestMatch.Distance("kitten", "sitting"), Is.EqualTo(3));
        Assert.That(ClosestMatch.Find("lrr", ["lr", "weight_decay"]), Is.EqualTo("lr"));
        Assert.That(ClosestMatch.Find("warmup", ["max_iters", "warmup_ratio_x", "warmup_iters"]), Is.EqualTo("warmup_ratio_x").Or.EqualTo("warmup_iters"));
        Assert.That(ClosestMatch.Find("anything", []), Is.Null);
    }
}
