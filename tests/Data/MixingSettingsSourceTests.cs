using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Detection;
using Vim.Tools.Commands;

namespace Vim.Tests.Data;

/// <summary>
/// data.mosaic's, data.mixup's and data.filter_cfg's value checks name the file and line of the key at fault (or the --set
/// that wrote it), as the binder's type errors do, and plain `vim config show` runs them as training does, without the data:
/// each case is a hand-written config whose bad key sits on a line counted by hand, and the expected text is the rule the
/// check states (mmdet's range or assertion) with the value written.
/// </summary>
public class MixingSettingsSourceTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-mixing-settings-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>Six lines of a COCO detection config whose data.root does not exist, then <paramref name="data"/> from line 7 on.</summary>
    private string Config(string data)
    {
        var path = Path.Combine(_root, "det.yaml");
        File.WriteAllText(path, $"task: detection\nmodel:\n  num_classes: 3\ndata:\n  type: coco\n  root: {Path.Combine(_root, "nowhere")}\n{data}");
        return path;
    }

    /// <summary>The refusal of `vim config show` (plain) and of training's settings check, which must be the same text.</summary>
    private static string Refusal(string path, params string[] overrides)
    {
        var shown = Assert.Throws<VimException>(() => ConfigCommand.Show(path, overrides, resolved: false))!.Message;
        var trained = Assert.Throws<VimException>(() => DetectionData.CheckSettings(ExperimentConfig.Load(path, overrides).Config))!.Message;
        Assert.That(trained, Is.EqualTo(shown), "config show checks the data section as training does");
        return shown;
    }

    [Test]
    public void MosaicValuesAreRefusedAtTheirFileAndLine()
    {
        var prob = Config("  mosaic:\n    prob: 1.5\n");
        Assert.That(Refusal(prob), Does.StartWith($"{prob}:8: data.mosaic.prob must be a probability in [0, 1], got 1.5"));

        var cache = Config("  mosaic:\n    cached: true\n    random_pop: false\n    max_cached_images: 4\n");
        Assert.That(Refusal(cache), Does.StartWith($"{cache}:10: data.mosaic.max_cached_images must be at least 5 with cached: true"));

        var pad = Config("  mosaic: {pad_val: 114.5}\n");
        Assert.That(Refusal(pad), Does.StartWith($"{pad}:7: data.mosaic.pad_val must be a whole colour value in [0, 255]").And.EndWith("got 114.5"));
    }

    [Test]
    public void MixUpValuesAreRefusedAtTheirFileAndLine()
    {
        var uncachedProb = Config("  mixup:\n    max_iters: 15\n    prob: 0.5\n");
        Assert.That(Refusal(uncachedProb), Does.StartWith($"{uncachedProb}:9: data.mixup.prob is CachedMixUp's (mmdet's MixUp mixes every sample); " +
            "set data.mixup.cached: true or leave prob at 1, got 0.5"));

        var cache = Config("  mixup:\n    cached: true\n    max_cached_images: 1\n");
        Assert.That(Refusal(cache), Does.StartWith($"{cache}:9: data.mixup.max_cached_images must be at least 2 with cached: true"));

        var cachedProb = Config("  mixup:\n    cached: true\n    random_pop: false\n    prob: 2\n");
        Assert.That(Refusal(cachedProb), Does.StartWith($"{cachedProb}:10: data.mixup.prob must be a probability in [0, 1], got 2"));

        // random_pop is a bool: the binder's type error, at its line too.
        var randomPop = Config("  mixup:\n    cached: true\n    random_pop: sometimes\n");
        Assert.That(Assert.Throws<VimException>(() => ConfigCommand.Show(randomPop, [], resolved: false))!.Message,
            Does.StartWith($"{randomPop}:9:").And.Contain("data.mixup.random_pop"));

        // ratio_range is left at its default [0.5, 1.5], which shrinks a 1×1 canvas to nothing: the section's line is named.
        var tiny = Config("  batch_size: 2\n  mixup: {img_scale: [1, 1]}\n");
        Assert.That(Refusal(tiny), Does.StartWith($"{tiny}:8: data.mixup.ratio_range's minimum 0.5 shrinks the img_scale canvas [1, 1] to nothing"));
    }

    [Test]
    public void FilterCfgAndSwitchedSettingsAreRefusedAtTheirFileAndLine()
    {
        var filter = Config("  filter_cfg:\n    filter_empty_gt: true\n    min_size: -1\n");
        Assert.That(Refusal(filter), Does.StartWith($"{filter}:9: data.filter_cfg.min_size is -1; expected the smallest width and height in pixels"));

        var switched = Config("  pipeline_switch:\n    at: 10\n    mosaic: {prob: -0.5}\n");
        Assert.That(Refusal(switched), Does.StartWith($"{switched}:9: data.pipeline_switch.mosaic.prob must be a probability in [0, 1], got -0.5"));

        var good = Config("  mosaic: {prob: 0.5}\n  mixup: {cached: true, prob: 0.5}\n  filter_cfg: {min_size: 32}\n");
        Assert.That(ConfigCommand.Show(good, [], resolved: false), Does.Contain("min_size: 32"),
            "valid settings pass without the data (data.root does not exist)");
        Assert.That(Refusal(good, "data.mosaic.prob=3"), Does.StartWith("--set data.mosaic.prob=3: data.mosaic.prob must be a probability in [0, 1], got 3"));
    }
}
