using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Segmentation;
using Vim.Tools;

namespace Vim.Tests.Config;

/// <summary>Settings and options that parse but cannot run are refused naming the key or option, not deep inside libtorch.</summary>
public class ImpossibleSettingsTests
{
    [TestCase(1.5, new[] { 1, 2, 3, 6 }, "model.seg_head.dropout_ratio must be in [0, 1) (the share of features dropped before the classifier), got 1.5")]
    [TestCase(0.1, new[] { 1, 0, 3 }, "model.seg_head.pool_scales must be positive grid sizes for the pyramid pooling, e.g. [1, 2, 3, 6], got [1, 0, 3]")]
    [TestCase(0.1, new int[0], "model.seg_head.pool_scales must be positive grid sizes")]
    public void SegmentationHeadSettings(double dropout, int[] poolScales, string expected)
    {
        var config = new ExperimentConfig
        {
            Task = TaskKind.Segmentation,
            Model = new ModelConfig
            {
                Backbone = new BackboneConfig { Name = "vimseg_tiny" }, NumClasses = 5,
                SegHead = new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16, DropoutRatio = dropout, PoolScales = [.. poolScales] },
            },
        };
        var e = Assert.Throws<VimException>(() => EncoderDecoder.FromConfig(config, seed: 0).Dispose())!;
        Assert.That(e.Message, Does.StartWith(expected));
    }

    [TestCase(new[] { "eval", "coco", "--gt", "g.json", "--results", "r.json", "--iou-type", "bbox", "--max-dets", "1,10,3000000000" },
        "--max-dets: '3000000000' is not a valid number (too large)")]
    [TestCase(new[] { "eval", "seg", "--pred", ".", "--gt", ".", "--num-classes", "70000" }, "--num-classes: expected a positive number up to 65535")]
    [TestCase(new[] { "eval", "bench", "--images", "-1" }, "--images: expected a positive number, got -1.")]
    [TestCase(new[] { "eval", "bench", "--with-plain-ap" }, "--with-plain-ap: times the plain AP before the error analysis, so it goes with --error-analysis.")]
    [TestCase(new[] { "bench", "backbone", "--models", "vim_tiny", "--sizes", "224", "--timeout", "-1" }, "--timeout")]
    [TestCase(new[] { "bench", "backbone", "--models", "vim_tiny", "--sizes", "224", "--warmup", "-1" }, "--warmup must be 0 or more, got -1.")]
    [TestCase(new[] { "bench", "backbone", "--child", "vim_tiny:explicit:224", "--warmup", "-2" }, "--warmup must be 0 or more, got -2.")]
    [TestCase(new[] { "bench", "scan", "--channels", "0" }, "--channels must be positive, got 0.")]
    [TestCase(new[] { "bench", "scan", "--warmup", "-1" }, "--warmup must be 0 or more, got -1.")]
    [TestCase(new[] { "bench", "backbone", "--models", "vimdet_tiny", "--sizes", "64", "--with-cp" },
        "--with-cp recomputes the blocks in backward and changes nothing in a forward; add --mode train.")]
    public void CommandLineNumbersOutOfRange(string[] args, string expected)
    {
        // These verbs report their own errors on the console's error stream.
        var error = new StringWriter();
        var console = Console.Error;
        Console.SetError(error);
        int code;
        try
        {
            code = VimCli.Run(args, error);
        }
        finally
        {
            Console.SetError(console);
        }
        Assert.That(code, Is.Not.Zero, error.ToString());
        Assert.That(error.ToString(), Does.StartWith($"error: {expected}"));
    }

    [Test]
    public void EmptyPathsAreRefusedNamingWhatWasExpected()
    {
        var error = new StringWriter();
        Assert.That(VimCli.Run(["config", "show", ""], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.StartWith("error: the config path is empty"));
        var config = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        error = new StringWriter();
        Assert.That(VimCli.Run(["train", config, "--work-dir", ""], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.StartWith("error: the work dir is empty (--work-dir)"));
        error = new StringWriter();
        Assert.That(VimCli.Run(["test", config, "--checkpoint", config, "--out", " "], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.StartWith("error: --out: the path is empty"));
    }

    [Test]
    public void AnOutputFolderThatCannotBeCreatedIsOneLineNamingIt()
    {
        var file = Path.GetTempFileName();
        try
        {
            var error = new StringWriter();
            var under = Path.Combine(file, "demo");
            Assert.That(VimCli.Run(["data", "demo", "--kind", "coco", "--out", under], error), Is.EqualTo(1));
            Assert.That(error.ToString(), Does.StartWith("error: ").And.Contain(file));
            Assert.That(error.ToString().Trim().Split('\n'), Has.Length.EqualTo(1), "no stack trace");
        }
        finally
        {
            File.Delete(file);
        }
    }
}
