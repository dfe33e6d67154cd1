using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Loading;

namespace Vim.Tests.Config;

/// <summary>data.train_split as one split (the form every config had) or a list, and data.train_repeat: binding, printing, refusals.</summary>
public class TrainSplitListConfigTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-trainsplits-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private ExperimentConfig Load(string data, params string[] overrides)
    {
        var path = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(path, $"task: detection\ndata:\n{data}");
        return ExperimentConfig.Load(path, overrides).Config;
    }

    /// <summary>The resolved config as `vim config show --resolved` and a work dir's config.yaml write it.</summary>
    private static string Resolved(ExperimentConfig config) => ConfigWriter.ToYaml(ConfigBinder.ToNode(config));

    [Test]
    public void OneSplitReadsAsAListOfOneAndPrintsAsItWasWritten()
    {
        var config = Load("  train_split: train2017\n");
        Assert.That(config.Data.TrainSplits, Is.EqualTo(new[] { "train2017" }));
        Assert.That(config.Data.TrainSplit, Is.EqualTo("train2017"));
        Assert.That(config.Data.TrainRepeat, Is.EqualTo(1));
        Assert.That(Resolved(config), Does.Contain("\n  train_split: train2017\n  train_repeat: 1\n"));
        Assert.That(new ExperimentConfig().Data.TrainSplits, Is.EqualTo(new[] { "training" }), "the default is ADE20k's training split");
        Assert.That(Resolved(new ExperimentConfig()), Does.Contain("\n  train_split: training\n"));
    }

    [Test]
    public void AListReadsInOrderPrintsAsAListAndReadsBackTheSame()
    {
        var config = Load("  train_split: [train2017, val35k]\n  train_repeat: 3\n");
        Assert.That(config.Data.TrainSplits, Is.EqualTo(new[] { "train2017", "val35k" }));
        Assert.That(config.Data.TrainRepeat, Is.EqualTo(3));
        var yaml = Resolved(config);
        Assert.That(yaml, Does.Contain("\n  train_split: [train2017, val35k]\n  train_repeat: 3\n"));
        var path = Path.Combine(_dir, "written.yaml");
        File.WriteAllText(path, yaml);
        Assert.That(ExperimentConfig.Load(path).Config.Data.TrainSplits, Is.EqualTo(new[] { "train2017", "val35k" }));

        Assert.That(Load("  train_split: train2017\n", "data.train_split=[a, b]").Data.TrainSplits, Is.EqualTo(new[] { "a", "b" }), "--set replaces the list");
        Assert.That(Load("  train_split: [a, b]\n", "data.train_split=c").Data.TrainSplits, Is.EqualTo(new[] { "c" }));
        Assert.That(() => config.Data.TrainSplit, Throws.InvalidOperationException.With.Message.Contains("lists 2 splits"),
            "code reading the one-split view would miss val35k");
    }

    /// <summary>Configs built in code (tests, tools) keep setting the one split as before.</summary>
    [Test]
    public void SettingTheOneSplitViewReplacesTheList()
    {
        var data = new DataConfig { TrainSplits = ["a", "b"] };
        data.TrainSplit = "train";
        Assert.That(data.TrainSplits, Is.EqualTo(new[] { "train" }));
    }

    [Test]
    public void AMappingOrNullIsRefusedNamingTheKey()
    {
        var e = Assert.Throws<VimException>(() => Load("  train_split: {a: 1}\n"))!;
        Assert.That(e.Message, Does.Contain("c.yaml:3").And.Contain("'data.train_split' must be a value or a list of values, got a mapping"));
        e = Assert.Throws<VimException>(() => Load("  train_split: train2017\n", "data.train_split="))!;
        Assert.That(e.Message, Does.Contain("'data.train_split' must be a value or a list of values, got null"));
        e = Assert.Throws<VimException>(() => Load("  train_split: [[a]]\n"))!;
        Assert.That(e.Message, Does.Contain("'data.train_split[0]' must be a string, got a list"));
    }

    [TestCase("[]", "data.train_split is an empty list")]
    [TestCase("[train, '']", "data.train_split[1] is empty")]
    [TestCase("[train, val, train]", "data.train_split lists 'train' twice (items 0 and 2)")]
    public void UnusableSplitListsAreRefusedByKey(string splits, string expected)
    {
        var config = Load($"  train_split: {splits}\n");
        Assert.That(() => TrainingLoaderChecks.CheckSettings(config.Data), Throws.InstanceOf<VimException>().With.Message.StartsWith(expected));
    }

    [TestCase(0)]
    [TestCase(-2)]
    public void ARepeatBelowOneIsRefusedByKey(int repeat)
    {
        var config = Load($"  train_repeat: {repeat}\n");
        Assert.That(() => TrainingLoaderChecks.CheckSettings(config.Data),
            Throws.InstanceOf<VimException>().With.Message.EqualTo($"data.train_repeat must be at least 1 (how many times each epoch visits the training samples), got {repeat}"));
    }
}
