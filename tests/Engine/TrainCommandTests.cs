using NUnit.Framework;
using Vim.Core.Ssm;
using Vim.Tools.Commands;
using Vim.Tools;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

public class TrainCommandTests
{
    /// <summary>
    /// The last line gives the best metric as the evaluation lines print it (0.#### in the invariant culture): a bbox_mAP is a
    /// fraction, and two decimals printed a best of 0.0024 as "best 0"; a German culture printed a decimal comma.
    /// </summary>
    [Test]
    public void TheLastLineGivesTheBestMetricAsTheEvaluationLinesPrintIt()
    {
        var length = new Vim.Core.Engine.TrainingLength(new Vim.Core.Config.ExperimentConfig(), null);
        var culture = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.GetCultureInfo("de-DE");
            Assert.That(TrainCommand.Outcome(new Vim.Core.Engine.TrainingResult(2, false, 0.0024202420242024204, "C", 0, length), "D", "R"),
                Is.EqualTo("finished 2 iterations; best 0.0024; checkpoints in D"));
            Assert.That(TrainCommand.Outcome(new Vim.Core.Engine.TrainingResult(4, false, 9.99587, "C", 0, length), "D", "R"),
                Is.EqualTo("finished 4 iterations; best 9.9959; checkpoints in D"));
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = culture;
        }
    }

    /// <summary>runtime.threads sizes libtorch's pool and our native kernels' pool (which otherwise takes every CPU).</summary>
    [Test]
    public void RuntimeThreadsReachLibtorchAndTheNativeKernels()
    {
        int torchThreads = get_num_threads(), nativeThreads = SelectiveScan.NativeThreads;
        try
        {
            TrainCommand.Prepare(Path.Combine(RepositoryPaths.Root, "configs/seg/upernet_vim_tiny_demo_ade.yaml"), "work", ["runtime.threads=1"]);
            Assert.That(get_num_threads(), Is.EqualTo(1));
            Assert.That(SelectiveScan.NativeThreads, Is.EqualTo(1));
        }
        finally
        {
            set_num_threads(torchThreads);
            SelectiveScan.NativeThreads = nativeThreads;
        }
    }

    /// <summary>
    /// mmdet's --amp is the setting it names: seen through the check that reads it, which refuses before anything is written.
    /// </summary>
    [Test]
    public void TheAmpFlagSetsRuntimeAmp()
    {
        var config = Path.Combine(RepositoryPaths.Root, "configs/seg/upernet_vim_tiny_demo_ade.yaml");
        var work = Path.Combine(Path.GetTempPath(), $"vimdense-flags-{Guid.NewGuid():N}");
        string Refusal(params string[] args)
        {
            var error = new StringWriter();
            Assert.That(VimCli.Run(["train", config, "--work-dir", work, .. args], error), Is.EqualTo(1));
            return error.ToString();
        }
        // A loss scale under bf16 is refused, and the message says what runtime.amp is.
        string[] scaled = ["--set", "runtime.loss_scale=512"];
        Assert.That(Refusal(scaled), Does.Contain("this run has runtime.amp false with amp_dtype bf16"));
        Assert.That(Refusal(["--amp", .. scaled]), Does.Contain("this run has runtime.amp true with amp_dtype bf16"));
        Assert.That(Directory.Exists(work), Is.False, "refused before the work dir");
    }

    /// <summary>vim train --set reaches runtime.vis_backends, whose check refuses a run without log.jsonl before the work dir exists.</summary>
    [Test]
    public void VisBackendsSetOnTheCommandLineAreCheckedBeforeTheWorkDir()
    {
        var config = Path.Combine(RepositoryPaths.Root, "configs/seg/upernet_vim_tiny_demo_ade.yaml");
        var work = Path.Combine(Path.GetTempPath(), $"vimdense-visbackends-{Guid.NewGuid():N}");
        var error = new StringWriter();
        Assert.That(VimCli.Run(["train", config, "--work-dir", work, "--set", "runtime.vis_backends=[tensorboard]"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("runtime.vis_backends must name local (log.jsonl, which `vim report` reads)").And.Contain("got [tensorboard]"));
        Assert.That(Directory.Exists(work), Is.False, "refused before the work dir");
    }

    /// <summary>
    /// The line printed after Ctrl-C repeats the run's overrides (a resume rebuilds the config from them), each word
    /// quoted so a POSIX shell gives it back unchanged.
    /// </summary>
    [Test]
    public void TheResumeHintRepeatsTheOverridesQuotedForTheShell()
    {
        Assert.That(TrainCommand.ResumeCommand("configs/seg/a.yaml", "work_dirs/a", ["data.root=/data/ADE", "model.backbone.pretrained_key=\"\"", "data.class_names=[a b, it's]"]),
            Is.EqualTo("./vim train configs/seg/a.yaml --work-dir work_dirs/a --set data.root=/data/ADE " +
                       "--set 'model.backbone.pretrained_key=\"\"' --set 'data.class_names=[a b, it'\\''s]' --resume"));
        Assert.That(TrainCommand.ResumeCommand("my config.yaml", "w", []), Is.EqualTo("./vim train 'my config.yaml' --work-dir w --resume"));
    }
}
