using System.Globalization;
using Vim.Core.Config;

namespace Vim.Core.Engine;

/// <summary>
/// The optimizer, schedule and train settings that type-check yet cannot train (an Adam beta of 1 divides by zero, a
/// layer decay above 1 multiplies the embedding's lr by 1.5²⁵): refused naming the key, before the task is built.
/// </summary>
public static class TrainingSettings
{
    public static void Check(ExperimentConfig config)
    {
        var optimizer = config.Optimizer;
        Require(double.IsFinite(optimizer.Lr) && optimizer.Lr > 0, "optimizer.lr", "a positive learning rate", optimizer.Lr);
        Require(double.IsFinite(optimizer.WeightDecay) && optimizer.WeightDecay >= 0, "optimizer.weight_decay", "at least 0", optimizer.WeightDecay);
        if (optimizer.Betas.Count != 2 || optimizer.Betas.Any(b => !(b >= 0 && b < 1)))
            throw new VimException($"optimizer.betas must be two numbers in [0, 1) (Adam's moment decays, e.g. [0.9, 0.999]), got [{Join(optimizer.Betas)}]");
        Require(optimizer.Momentum >= 0 && optimizer.Momentum < 1, "optimizer.momentum", "in [0, 1)", optimizer.Momentum);
        Require(optimizer.LayerDecayRate > 0 && optimizer.LayerDecayRate <= 1, "optimizer.layer_decay_rate",
            "in (0, 1] (each block closer to the input gets this factor once more; 1 turns layer decay off)", optimizer.LayerDecayRate);
        if (optimizer.GradClipNorm is { } clip)
            Require(double.IsFinite(clip) && clip > 0, "optimizer.grad_clip_norm", "positive (or null for no clipping)", clip);
        foreach (var (key, multipliers) in optimizer.CustomKeys)
        {
            if (key.Length == 0) throw new VimException("optimizer.custom_keys: a key must be a non-empty part of parameter names (e.g. backbone, pos_embed)");
            Require(double.IsFinite(multipliers.LrMult) && multipliers.LrMult >= 0, $"optimizer.custom_keys.{key}.lr_mult", "at least 0 (0 freezes)", multipliers.LrMult);
            Require(double.IsFinite(multipliers.DecayMult) && multipliers.DecayMult >= 0, $"optimizer.custom_keys.{key}.decay_mult", "at least 0", multipliers.DecayMult);
        }

        var schedule = config.Schedule;
        // An epoch-counted schedule is checked in iterations once its epoch is known (EpochSchedule.Resolve); here what holds in epochs.
        bool countsEpochs = schedule.MaxEpochs is not null;
        if (countsEpochs) EpochSchedule.CheckSettings(config);
        else Require(schedule.IterationCount() >= 1, "schedule.max_iters", "at least 1", schedule.IterationCount());
        Require(schedule.WarmupIters >= 0, "schedule.warmup_iters", "at least 0", schedule.WarmupIters);
        Require(schedule.WarmupRatio >= 0 && schedule.WarmupRatio <= 1, "schedule.warmup_ratio", "in [0, 1]", schedule.WarmupRatio);
        Require(double.IsFinite(schedule.Power) && schedule.Power > 0, "schedule.power", "positive", schedule.Power);
        Require(double.IsFinite(schedule.MinLr) && schedule.MinLr >= 0, "schedule.min_lr", "at least 0", schedule.MinLr);
        Require(double.IsFinite(schedule.Gamma) && schedule.Gamma > 0, "schedule.gamma", "positive", schedule.Gamma);
        if (ParamSchedulerList.Read(schedule) is { } schedulers)
        {
            CheckMomentumSchedulers(schedulers, config.Optimizer);
            // MMEngine steps it from ParamSchedulerHook.after_val_epoch: without evaluations during training it never acts.
            if (config.Train.EvalInterval == 0 && schedulers.FirstOrDefault(e => e.IsPlateau) is { } plateau)
                throw new VimException($"{plateau.Source}: {plateau.Name} is stepped by evaluations, but train.eval_interval is 0 (only the last iteration " +
                    "is evaluated, after which nothing trains): set train.eval_interval, e.g. 1 epoch or 1000 iterations");
        }
        for (int i = 0; i < schedule.Milestones.Count; i++)
            if (schedule.Milestones[i] < 1 || (i > 0 && schedule.Milestones[i] <= schedule.Milestones[i - 1]))
                throw new VimException($"schedule.milestones must be rising positive {(countsEpochs ? "epochs" : "iterations")}, got [{Join(schedule.Milestones)}]");

        var train = config.Train;
        Require(train.EvalInterval >= 0, "train.eval_interval", "at least 0 (0: evaluate at the end only)", train.EvalInterval);
        Require(train.CheckpointInterval >= 1, "train.checkpoint_interval", "at least 1", train.CheckpointInterval);
        Require(train.ValBegin >= 1, "train.val_begin", $"at least 1 (the first {(countsEpochs ? "epoch" : "iteration")} after which to evaluate)", train.ValBegin);
        // A later start would leave the run without any evaluation, not even the last one (MMEngine's loops evaluate the last
        // epoch or iteration only from val_begin on); an epoch-counted one is refused by EpochSchedule.CheckSettings.
        if (!countsEpochs && train.ValBegin > schedule.IterationCount())
            throw new VimException($"train.val_begin must be at most schedule.max_iters ({schedule.IterationCount()}): it is the first iteration after which " +
                $"to evaluate, and {train.ValBegin} would leave the run without an evaluation; got {train.ValBegin}");
        Require(train.LogInterval >= 1, "train.log_interval", "at least 1", train.LogInterval);
        Require(train.KeepLast >= 1, "train.keep_last", "at least 1", train.KeepLast);
        Require(config.AutoScaleLr.BaseBatchSize >= 1, "auto_scale_lr.base_batch_size", "at least 1 (the images per optimiser step optimizer.lr was tuned for)",
            config.AutoScaleLr.BaseBatchSize);
        if (train.AccumulateSteps < 1) throw new VimException($"train.accumulate_steps must be ≥ 1, got {train.AccumulateSteps}");
        // A checkpoint taken mid-accumulation would lose the gradients summed so far, breaking exact resume: periodic ones,
        // best.safetensors (written at evaluations) and the last one. A run ending mid-accumulation would also compute
        // its last batches' gradients for no step.
        // Epoch-counted intervals become multiples of the epoch, which EpochSchedule.Resolve holds to the accumulation.
        if (!countsEpochs && train.CheckpointInterval % train.AccumulateSteps != 0)
            throw new VimException($"train.checkpoint_interval ({train.CheckpointInterval}) must be a multiple of train.accumulate_steps ({train.AccumulateSteps})");
        if (!countsEpochs && train.EvalInterval > 0 && train.EvalInterval % train.AccumulateSteps != 0)
            throw new VimException($"train.eval_interval ({train.EvalInterval}) must be a multiple of train.accumulate_steps ({train.AccumulateSteps}): " +
                "best.safetensors is written at evaluations");
        if (!countsEpochs && schedule.IterationCount() % train.AccumulateSteps != 0)
            throw new VimException($"schedule.max_iters ({schedule.IterationCount()}) must be a multiple of train.accumulate_steps ({train.AccumulateSteps}), " +
                "so the run ends on an optimizer step");
        if (train.EarlyStopping is { } stopping)
        {
            Require(stopping.Patience >= 1, "train.early_stopping.patience", "at least 1 (evaluations without improvement before stopping)", stopping.Patience);
            Require(double.IsFinite(stopping.MinDelta) && stopping.MinDelta >= 0, "train.early_stopping.min_delta",
                "a finite number ≥ 0 (how much an evaluation must beat the best by, in the metric's units)", stopping.MinDelta);
            if (stopping.StoppingThreshold is { } threshold)
                Require(double.IsFinite(threshold), "train.early_stopping.stopping_threshold", "a finite number (or null for none)", threshold);
            if (stopping.Monitor is { Length: 0 })
                throw new VimException("train.early_stopping.monitor must name a metric the evaluator returns (e.g. mIoU, bbox_mAP), or be null for the task's primary metric; got ''");
            // It would never be consulted: the one evaluation comes at the end.
            if (train.EvalInterval == 0)
                throw new VimException("train.early_stopping needs periodic evaluations, but train.eval_interval is 0 (evaluate at the end only); " +
                    "set train.eval_interval or remove train.early_stopping");
        }
        // Our momentum is the weight the average keeps (timm's decay); MMEngine's EMAHook momentum is 1 minus it.
        if (train.EmaMomentum is { } ema && ema < 0.5)
            throw new VimException($"train.ema_momentum is the share the average keeps at each step (e.g. 0.9998), got {ema.ToString(CultureInfo.InvariantCulture)}; " +
                $"MMEngine's EMAHook momentum is 1 minus it (0.0002 there is 0.9998 here)");
        Require(train.EmaBeginIter >= 0, "train.ema_begin_iter", "at least 0 (0: the average starts with the run)", train.EmaBeginIter);
        Require(train.EmaBeginEpoch >= 0, "train.ema_begin_epoch", "at least 0 (0: not set)", train.EmaBeginEpoch);
        // As MMEngine's EMAHook asserts: one begin, within the run.
        if (train.EmaBeginIter > 0 && train.EmaBeginEpoch > 0)
            throw new VimException($"train.ema_begin_iter ({train.EmaBeginIter}) and train.ema_begin_epoch ({train.EmaBeginEpoch}) are both set; set one");
        if (train.EmaBeginEpoch > 0 && !countsEpochs)
            throw new VimException($"train.ema_begin_epoch ({train.EmaBeginEpoch}) counts epochs, but schedule.max_epochs is not set (the run counts iterations); use train.ema_begin_iter");
        if (countsEpochs && train.EmaBeginEpoch > schedule.MaxEpochs)
            throw new VimException($"train.ema_begin_epoch must be at most schedule.max_epochs ({schedule.MaxEpochs}), got {train.EmaBeginEpoch}");
        if (!countsEpochs && train.EmaBeginIter > schedule.IterationCount())
            throw new VimException($"train.ema_begin_iter must be at most the run's {schedule.IterationCount()} iterations, got {train.EmaBeginIter}");
        // Each would be silently ignored.
        if (train.EmaMomentum is null)
        {
            string? orphan = train.EmaBeginIter > 0 ? "train.ema_begin_iter" : train.EmaBeginEpoch > 0 ? "train.ema_begin_epoch" : !train.EmaValidate ? "train.ema_validate" : null;
            if (orphan is not null)
                throw new VimException($"{orphan} applies to the EMA of the weights, but train.ema_momentum is not set; set train.ema_momentum (e.g. 0.9998) or remove {orphan}");
        }
        if (config.LoadFromEma && LoadFromCheckpoint.Configured(config) is null)
            throw new VimException("load_from_ema is true but load_from names no checkpoint; set load_from (vim train --load-from CKPT) or remove load_from_ema");

        var backends = config.Runtime.VisBackends;
        // log.jsonl is the run's history that `vim report` (and the demo's report) read: no run goes without it.
        if (!backends.Contains(VisBackend.Local) || backends.Distinct().Count() != backends.Count)
            throw new VimException($"runtime.vis_backends must name local (log.jsonl, which `vim report` reads) and each backend once, " +
                $"e.g. [local] or [local, tensorboard]; got {ConfigWriter.Inline(ConfigBinder.ToNode(backends))}");

        if (config.Runtime.AmpDtype is not ("bf16" or "fp16"))
            throw new VimException($"runtime.amp_dtype must be bf16 or fp16, got '{config.Runtime.AmpDtype}'");
        LossScaler.CheckSetting(config.Runtime.LossScale);
        // A loss scale set for a run that does not scale the loss would silently do nothing.
        if (!ScalesTheLoss(config.Runtime) && config.Runtime.LossScale != new RuntimeConfig().LossScale)
            throw new VimException($"runtime.loss_scale ('{config.Runtime.LossScale}') applies to fp16 autocast only (runtime.amp: true, runtime.amp_dtype: fp16); " +
                $"this run has runtime.amp {(config.Runtime.Amp ? "true" : "false")} with amp_dtype {config.Runtime.AmpDtype}. Remove the setting (bf16 and float32 need no loss scaling)");
    }

    /// <summary>
    /// The learning rate the schedule starts from: optimizer.lr, times (images per optimiser step) / auto_scale_lr.base_batch_size
    /// when auto_scale_lr.enable is set; <paramref name="explanation"/> says how it was reached (null when not scaled).
    /// </summary>
    public static double BaseLearningRate(ExperimentConfig config, int processes, out string? explanation)
    {
        explanation = null;
        if (!config.AutoScaleLr.Enable) return config.Optimizer.Lr;
        long images = (long)config.Data.BatchSize * processes * config.Train.AccumulateSteps;
        double ratio = (double)images / config.AutoScaleLr.BaseBatchSize;
        double lr = config.Optimizer.Lr * ratio;
        explanation = string.Create(CultureInfo.InvariantCulture,
            $"auto_scale_lr: {images} images per optimiser step ({config.Data.BatchSize} per process × {processes} process(es) × {config.Train.AccumulateSteps} " +
            $"accumulated), base_batch_size {config.AutoScaleLr.BaseBatchSize}: lr {config.Optimizer.Lr:G6} × {ratio:G6} = {lr:G6}");
        return lr;
    }

    /// <summary>Whether a run with these settings trains with a <see cref="LossScaler"/>: fp16 gradients underflow without one.</summary>
    public static bool ScalesTheLoss(RuntimeConfig runtime) => runtime.Amp && runtime.AmpDtype == "fp16";

    private static void Require(bool holds, string key, string expected, double value)
    {
        if (!holds) throw new VimException($"{key} must be {expected}, got {value.ToString(CultureInfo.InvariantCulture)}");
    }

    private static string Join<T>(IEnumerable<T> values) where T : IFormattable =>
        string.Join(", ", values.Select(v => v.ToString(null, CultureInfo.InvariantCulture)));

    /// <summary>
    /// A momentum scheduler (MMEngine's rules, each starting from the configured momentum) needs a momentum to move: SGD's
    /// optimizer.momentum 0 is refused, since its rules, multiplicative or (QuadraticWarmupMomentum) in steps of the initial
    /// value, would keep it at 0. OneCycleLR's cycle_momentum is not: it writes its own cycle between max_momentum and
    /// base_momentum over whatever SGD was given, as PyTorch's OneCycleLR does with SGD(momentum=0), whose step then keeps a
    /// buffer from the first nonzero momentum. Both in one list would write the momentum each step, the later one silently winning.
    /// </summary>
    private static void CheckMomentumSchedulers(IReadOnlyList<ParamSchedulerEntry> schedulers, OptimizerConfig optimizer)
    {
        if (schedulers.FirstOrDefault(e => e.IsMomentumScheduler) is { } first && optimizer.Type == OptimizerKind.Sgd && optimizer.Momentum == 0)
            throw new VimException($"{first.Source}: {first.Name} schedules SGD's momentum, but optimizer.momentum is 0 (plain SGD keeps no momentum to schedule): " +
                "set optimizer.momentum, e.g. 0.9, or drop the momentum scheduler");
        if (schedulers.FirstOrDefault(e => e.Type == ParamSchedulerType.OneCycleLR && e.CycleMomentum) is { } cycling
            && schedulers.FirstOrDefault(e => e.IsMomentumScheduler) is { } momentumScheduler)
            throw new VimException($"{cycling.Source}: {cycling.Name} cycle_momentum and {momentumScheduler.Name} ({momentumScheduler.Source}) both set the momentum " +
                "at every step: keep one (cycle_momentum: false, or drop the momentum scheduler)");
    }
}
