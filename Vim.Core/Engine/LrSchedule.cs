using Vim.Core.Config;

namespace Vim.Core.Engine;

/// <summary>
/// Per-iteration learning rate: the main policy (constant, poly, cosine, multistep) multiplied during
/// warmup by a factor rising linearly from <see cref="ScheduleConfig.WarmupRatio"/> to 1, as mmcv's
/// and detectron2's warmup do; or, with schedule.param_scheduler, MMEngine's chained schedulers (<see cref="Chained"/>).
/// A function of the iteration either way, so resuming needs only the iteration.
/// </summary>
public sealed class LrSchedule
{
    public LrSchedule(ScheduleConfig config)
    {
        Config = config;
        MaxIters = config.IterationCount();
        if (ParamSchedulerList.Read(config) is { } entries)
            Chained = new ChainedParamSchedule(entries, MaxIters, config.EpochLength);
    }

    public ScheduleConfig Config { get; }

    /// <summary>The schedule's length; an epoch-counted schedule is refused until <see cref="EpochSchedule.Resolve"/> has turned it into iterations.</summary>
    public int MaxIters { get; }

    /// <summary>schedule.param_scheduler in iterations; null for the fixed schedule (policy and warmup).</summary>
    public ChainedParamSchedule? Chained { get; }

    /// <summary>The learning rate at <paramref name="iteration"/> (0-based, before that iteration's step).</summary>
    public double LrAt(double baseLr, int iteration) =>
        Chained is { } chained ? chained.LrAt(baseLr, iteration) : MainLr(baseLr, iteration) * WarmupFactor(iteration);

    /// <summary>
    /// The learning rate of a parameter group whose layer-decay scale is <paramref name="lrScale"/> at <paramref name="iteration"/>:
    /// the schedule applied to base lr × scale (mmcv: each group's initial lr is scaled, so min_lr is one floor for all groups
    /// rather than scaled with them; MMEngine's param schedulers act on each group's initial_lr the same way, eta_min absolute).
    /// The one formula the trainer's optimiser steps and `vim config lr` both use.
    /// </summary>
    public double GroupLrAt(double baseLr, double lrScale, int iteration) => LrAt(baseLr * lrScale, iteration);

    /// <summary>Whether schedule.param_scheduler schedules the momentum (a momentum scheduler, or OneCycleLR with cycle_momentum).</summary>
    public bool SchedulesMomentum => Chained?.SchedulesMomentum ?? false;

    /// <summary>
    /// The momentum (SGD's momentum, Adam's/AdamW's betas[0]) the optimiser step of <paramref name="iteration"/> takes, from
    /// the configured one (<see cref="OptimizerFactory.InitialMomentum"/>); null where nothing schedules it, so the
    /// optimiser keeps its own. The one formula the trainer, its log and `vim config lr` use.
    /// </summary>
    public double? MomentumAt(double initialMomentum, int iteration) =>
        SchedulesMomentum ? Chained!.MomentumAt(initialMomentum, iteration) : null;

    /// <summary>The fixed schedule's warmup factor (1 while param_scheduler sets the lr: its own LinearLR warms up).</summary>
    public double WarmupFactor(int iteration)
    {
        if (Chained is not null || Config.WarmupIters <= 0 || iteration >= Config.WarmupIters) return 1.0;
        double progress = (double)iteration / Config.WarmupIters;
        return Config.WarmupRatio + (1.0 - Config.WarmupRatio) * progress;
    }

    private double MainLr(double baseLr, int iteration)
    {
        double progress = Math.Min(1.0, (double)iteration / Math.Max(1, MaxIters));
        return Config.Policy switch
        {
            LrPolicy.Constant => baseLr,
            LrPolicy.Poly => (baseLr - Config.MinLr) * Math.Pow(1.0 - progress, Config.Power) + Config.MinLr,
            LrPolicy.Cosine => Config.MinLr + (baseLr - Config.MinLr) * 0.5 * (1.0 + Math.Cos(Math.PI * progress)),
            LrPolicy.Multistep => baseLr * Math.Pow(Config.Gamma, Config.Milestones.Count(m => iteration >= m)),
            _ => throw new ArgumentOutOfRangeException(nameof(iteration), Config.Policy, "unknown lr policy"),
        };
    }
}
