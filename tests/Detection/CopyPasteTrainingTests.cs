using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Tools.Commands;

namespace Vim.Tests.Detection;

/// <summary>data.copy_paste end to end on the tiny demo COCO data: the config's refusals, the training loader, `vim data browse` and a short training run.</summary>
public class CopyPasteTrainingTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = DetectionTaskTests.CreateDemoRoot("vimdense-copypaste-");

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private ExperimentConfig Config(CopyPasteConfig? copyPaste, bool masks = true)
    {
        var config = DetectionTaskTests.ConfigAt(_root);
        config.Data.CopyPaste = copyPaste;
        config.Model.DetHead.MaskOn = masks;
        return config;
    }

    [Test]
    public void ConfigsItCannotServeAreRefusedNamingTheKey()
    {
        var segmentation = Path.Combine(_root, "seg.yaml");
        File.WriteAllText(segmentation, "task: segmentation\ndata:\n  copy_paste: {max_num_pasted: 10}\n");
        var e = Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation))!;
        Assert.That(e.Message, Is.EqualTo($"{segmentation}:3: data.copy_paste is a detection setting, but the config's task is segmentation, " +
            "which never reads it; remove it (or set task)"));

        var detection = Path.Combine(_root, "det.yaml");
        File.WriteAllText(detection, "task: detection\ndata:\n  copy_paste: {}\n");
        var read = ExperimentConfig.Load(detection).Config.Data.CopyPaste!;
        Assert.That((read.MaxNumPasted, read.BboxOccludedThr, read.MaskOccludedThr, read.Selected, read.PasteByBox), Is.EqualTo((100, 10, 300, true, false)),
            "an empty section takes mmdet's defaults");
        Assert.That(ExperimentConfig.Load(detection, ["data.copy_paste="]).Config.Data.CopyPaste, Is.Null);
        Assert.That(new ExperimentConfig().Data.CopyPaste, Is.Null, "off unless set");

        e = Assert.Throws<VimException>(() => new DetectionData(Config(new CopyPasteConfig(), masks: false)))!;
        Assert.That(e.Message, Does.StartWith("data.copy_paste pastes objects by their masks, but model.det_head.mask_on is false")
            .And.Contain("set data.copy_paste.paste_by_box: true"));
        e = Assert.Throws<VimException>(() => new DetectionData(Config(new CopyPasteConfig { PasteByBox = true })))!;
        Assert.That(e.Message, Does.StartWith("data.copy_paste.paste_by_box is true, but model.det_head.mask_on is true"));
        e = Assert.Throws<VimException>(() => new DetectionData(Config(new CopyPasteConfig { MaxNumPasted = 0 })))!;
        Assert.That(e.Message, Does.StartWith("data.copy_paste.max_num_pasted must be at least 1"));
        Assert.DoesNotThrow(() => new DetectionData(Config(new CopyPasteConfig { PasteByBox = true }, masks: false)));
    }

    /// <summary>
    /// The training loader (and so `vim data browse`, which reads it) pastes: some sample carries annotations of another
    /// training image, every annotation of the training file; by masks with a mask head, by boxes without one.
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    public void TheTrainingLoaderPastesObjectsOfOtherTrainingImages(bool masks)
    {
        var config = Config(new CopyPasteConfig { PasteByBox = !masks }, masks);
        var data = new DetectionData(config);
        var imageOf = data.TrainSet.Parts[0].Coco.Annotations.ToDictionary(a => a.Id, a => a.ImageId);
        var samples = data.TrainingLoader(config.Runtime.Seed, DataShard.Whole).Samples(0, endless: true).Take(12).ToList();
        Assert.That(samples.SelectMany(s => s.AnnotationIds), Has.All.Matches<long>(imageOf.ContainsKey));
        Assert.That(samples.Count(s => s.AnnotationIds.Any(id => imageOf[id] != s.ImageId)), Is.GreaterThan(0), "some sample has another image's objects");
        foreach (var sample in samples) Assert.That(sample.Masks?.Count, Is.EqualTo(masks ? sample.InstanceCount : null));

        Assert.That(data.Summary, Does.Contain(" training images, each with objects of another pasted in (data.copy_paste) and 3 validation images"));

        var drawings = DataBrowseCommand.Browse(config, training: true, count: 3, epoch: 0, Path.Combine(_root, "browse"), TextWriter.Null);
        Assert.That(drawings.Select(File.Exists), Has.All.True);
    }

    [Test]
    public void ADetectorTrainsWithCopyPaste() => TrainsWithFiniteLosses(Config(new CopyPasteConfig()), Path.Combine(_root, "work"));

    /// <summary>A few iterations of the tiny detector on <paramref name="config"/>, each logged loss and mask loss finite.</summary>
    internal static void TrainsWithFiniteLosses(ExperimentConfig config, string workDir)
    {
        using var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector);
        var result = new Trainer<Batch>(task, config, workDir, "cfg", TextWriter.Null).Run(null);
        Assert.That(result.Iteration, Is.EqualTo(config.Schedule.MaxIters));
        var training = JsonLinesLog.Read(Path.Combine(workDir, "log.jsonl")).Where(r => r.Mode is null && r.Has("loss")).ToList();
        Assert.That(training, Is.Not.Empty);
        foreach (var name in new[] { "loss", "loss_mask" })
            Assert.That(training.All(r => double.IsFinite(r.Number(name))), Is.True, name);
    }
}
