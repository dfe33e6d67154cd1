using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;

namespace Vim.Tests.Engine;

public class TrainingSettingsTests
{
    [Test]
    public void EveryRepositoryConfigTrains()
    {
        foreach (var file in Directory.EnumerateFiles(Path.Combine(RepositoryPaths.Root, "configs"), "*.yaml", SearchOption.AllDirectories)
                     .Where(f => !f.Contains("_base_", StringComparison.Ordinal)))
            Assert.DoesNotThrow(() => TrainingSettings.Check(ExperimentConfig.Load(file).Config), file);
    }

    [TestCase("optimizer.betas=[1, 0.999]", "optimizer.betas must be two numbers in [0, 1) (Adam's moment decays, e.g. [0.9, 0.999]), got [1, 0.999]")]
    [TestCase("optimizer.betas=[0.9]", "optimizer.betas must be two numbers in [0, 1)")]
    [TestCase("optimizer.lr=0", "optimizer.lr must be a positive learning rate, got 0")]
    [TestCase("optimizer.lr=-1e-4", "optimizer.lr must be a positive learning rate, got -0.0001")]
    [TestCase("optimizer.weight_decay=-0.05", "optimizer.weight_decay must be at least 0, got -0.05")]
    [TestCase("optimizer.layer_decay_rate=1.5", "optimizer.layer_decay_rate must be in (0, 1]")]
    [TestCase("optimizer.layer_decay_rate=0", "optimizer.layer_decay_rate must be in (0, 1]")]
    [TestCase("optimizer.grad_clip_norm=0", "optimizer.grad_clip_norm must be positive (or null for no clipping), got 0")]
    [TestCase("optimizer.momentum=1", "optimizer.momentum must be in [0, 1), got 1")]
    [TestCase("schedule.max_iters=0", "schedule.max_iters must be at least 1, got 0")]
    [TestCase("schedule.warmup_ratio=2", "schedule.warmup_ratio must be in [0, 1], got 2")]
    [TestCase("schedule.milestones=[300, 200]", "schedule.milestones must be rising positive iterations, got [300, 200]")]
    [TestCase("train.checkpoint_interval=0", "train.checkpoint_interval must be at least 1, got 0")]
    [TestCase("train.eval_interval=-5", "train.eval_interval must be at least 0 (0: evaluate at the end only), got -5")]
    [TestCase("train.keep_last=0", "train.keep_last must be at least 1, got 0")]
    [TestCase("auto_scale_lr.base_batch_size=0", "auto_scale_lr.base_batch_size must be at least 1 (the images per optimiser step optimizer.lr was tuned for), got 0")]
    [TestCase("train.ema_momentum=0.0002", "train.ema_momentum is the share the average keeps at each step (e.g. 0.9998), got 0.0002; MMEngine's EMAHook momentum is 1 minus it")]
    [TestCase("runtime.amp=true;runtime.amp_dtype=fp16;runtime.loss_scale=0", "runtime.loss_scale must be 'dynamic' or a positive number (a static scale, e.g. 512), got '0'")]
    [TestCase("runtime.amp=true;runtime.amp_dtype=fp16;runtime.loss_scale=auto", "runtime.loss_scale must be 'dynamic' or a positive number (a static scale, e.g. 512), got 'auto'")]
    [TestCase("runtime.amp=true;runtime.loss_scale=512", "runtime.loss_scale ('512') applies to fp16 autocast only")]
    [TestCase("runtime.amp_dtype=fp16;runtime.loss_scale=512", "runtime.loss_scale ('512') applies to fp16 autocast only")]
    [TestCase("train.accumulate_steps=3;train.checkpoint_interval=300;train.eval_interval=200", "train.eval_interval (200) must be a multiple of train.accumulate_steps (3)")]
    [TestCase("train.accumulate_steps=3;train.checkpoint_interval=300;train.eval_interval=300;schedule.max_iters=1000", "schedule.max_iters (1000) must be a multiple of train.accumulate_steps (3)")]
    [TestCase("runtime.amp=true;runtime.amp_dtype=bfloat16", "runtime.amp_dtype must be bf16 or fp16, got 'bfloat16'")]
    [TestCase("train.early_stopping.patience=0", "train.early_stopping.patience must be at least 1 (evaluations without improvement before stopping), got 0")]
    [TestCase("train.early_stopping.min_delta=-0.1", "train.early_stopping.min_delta must be a finite number ≥ 0 (how much an evaluation must beat the best by, in the metric's units), got -0.1")]
    [TestCase("train.early_stopping.min_delta=NaN", "train.early_stopping.min_delta must be a finite number ≥ 0")]
    [TestCase("train.early_stopping.stopping_threshold=.inf", "train.early_stopping.stopping_threshold must be a finite number (or null for none), got Infinity")]
    [TestCase("train.early_stopping.monitor=''", "train.early_stopping.monitor must name a metric the evaluator returns (e.g. mIoU, bbox_mAP), or be null for the task's primary metric; got ''")]
    [TestCase("train.eval_interval=0;train.early_stopping.patience=3", "train.early_stopping needs periodic evaluations, but train.eval_interval is 0")]
    [TestCase("train.ema_momentum=0.9998;train.ema_begin_iter=-1", "train.ema_begin_iter must be at least 0 (0: the average starts with the run), got -1")]
    [TestCase("train.ema_momentum=0.9998;train.ema_begin_iter=301", "train.ema_begin_iter must be at most the run's 300 iterations, got 301")]
    [TestCase("schedule.max_iters=null;schedule.max_epochs=4;train.eval_interval=1;train.checkpoint_interval=1;train.ema_momentum=0.9998;train.ema_begin_epoch=5",
        "train.ema_begin_epoch must be at most schedule.max_epochs (4), got 5")]
    [TestCase("train.ema_momentum=0.9998;train.ema_begin_iter=10;train.ema_begin_epoch=2", "train.ema_begin_iter (10) and train.ema_begin_epoch (2) are both set; set one")]
    [TestCase("train.ema_momentum=0.9998;train.ema_begin_epoch=2",
        "train.ema_begin_epoch (2) counts epochs, but schedule.max_epochs is not set (the run counts iterations); use train.ema_begin_iter")]
    [TestCase("train.ema_validate=false", "train.ema_validate applies to the EMA of the weights, but train.ema_momentum is not set; set train.ema_momentum (e.g. 0.9998) or remove train.ema_validate")]
    [TestCase("train.ema_begin_iter=100", "train.ema_begin_iter applies to the EMA of the weights, but train.ema_momentum is not set")]
    public void SettingsThatCannotTrainAreRefusedNamingTheKey(string setting, string expected)
    {
        var file = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var config = ExperimentConfig.Load(file, setting.Split(";")).Config;
        var e = Assert.Throws<VimException>(() => TrainingSettings.Check(config))!;
        Assert.That(e.Message, Does.StartWith(expected));
    }
}
