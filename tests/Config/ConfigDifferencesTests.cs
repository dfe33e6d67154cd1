using NUnit.Framework;
using Vim.Core.Config;

namespace Vim.Tests.Config;

public class ConfigDifferencesTests
{
    [Test]
    public void NamesEachChangedAddedAndRemovedSettingByItsFullKey()
    {
        const string before = "optimizer:\n  lr: 0.0001\n  betas: [0.9, 0.999]\ndata:\n  root: /data/ade\n  batch_size: 8\nold: 1\n";
        const string after = "optimizer:\n  lr: 0.0002\n  betas: [0.9, 0.98]\ndata:\n  root: /data/ade\n  batch_size: 8\n  num_workers: 2\n";
        Assert.That(ConfigDifferences.Between(before, after), Is.EqualTo(new[]
        {
            "optimizer.lr: 0.0001 → 0.0002",
            "optimizer.betas: [0.9, 0.999] → [0.9, 0.98]",
            "data.num_workers: (absent) → 2",
            "old: 1 → (absent)",
        }));
        Assert.That(ConfigDifferences.Between(after, after), Is.Empty);
    }

    /// <summary>A config written by <see cref="ConfigWriter"/> and read back has no difference with itself, key order aside.</summary>
    [Test]
    public void AWrittenConfigEqualsItselfAndAnOverrideShowsUp()
    {
        var config = new ExperimentConfig();
        string yaml = ConfigWriter.ToYaml(ConfigBinder.ToNode(config));
        Assert.That(ConfigDifferences.Between(yaml, yaml), Is.Empty);
        config.Optimizer.Lr = 0.5;
        config.Data.CropSize = [256, 256];
        string changed = ConfigWriter.ToYaml(ConfigBinder.ToNode(config));
        var lines = ConfigDifferences.Between(yaml, changed);
        Assert.That(lines, Has.Count.EqualTo(2));
        Assert.That(lines, Has.One.Match("^optimizer\\.lr: [0-9.e-]+ → 0\\.5$"));
        Assert.That(lines, Has.One.EqualTo("data.crop_size: [512, 512] → [256, 256]"));
    }
}
