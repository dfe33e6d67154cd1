namespace Vim.Core.Config;

/// <summary>
/// The learning-rate schedule and the run's length: linear warmup (always in iterations, as mmdet's LinearLR with
/// by_epoch=False), then the main policy; or MMEngine's list of chained schedulers (<see cref="ParamScheduler"/>), which
/// replaces both. The length is schedule.max_iters, or schedule.max_epochs (MMEngine's
/// EpochBasedTrainLoop), which makes <see cref="Milestones"/>, train.eval_interval and train.checkpoint_interval count
/// epochs; <c>Engine.EpochSchedule</c> turns an epoch-counted schedule into iterations once the training loader's epoch
/// length is known.
/// </summary>
public sealed class ScheduleConfig
{
    /// <summary>The length when neither <see cref="MaxIters"/> nor <see cref="MaxEpochs"/> is set.</summary>
    public const int DefaultMaxIters = 60000;

    /// <summary>Iterations to train (null: <see cref="DefaultMaxIters"/>, unless <see cref="MaxEpochs"/> is set; both set is refused).</summary>
    public int? MaxIters { get; set; }

    /// <summary>
    /// Epochs to train (MMEngine's EpochBasedTrainLoop max_epochs); null: the run counts iterations. While set, the
    /// milestones and train.eval_interval / train.checkpoint_interval count epochs, warmup_iters and train.log_interval iterations.
    /// </summary>
    public int? MaxEpochs { get; set; }

    public LrPolicy Policy { get; set; } = LrPolicy.Poly;

    public int WarmupIters { get; set; } = 1500;

    /// <summary>Warmup starts at lr × this factor and rises linearly to lr.</summary>
    public double WarmupRatio { get; set; } = 1e-6;

    /// <summary>Poly power.</summary>
    public double Power { get; set; } = 1.0;

    /// <summary>Floor for poly and cosine.</summary>
    public double MinLr { get; set; }

    /// <summary>Multistep: iterations (epochs while <see cref="MaxEpochs"/> is set) at which the lr is multiplied by <see cref="Gamma"/>.</summary>
    public List<int> Milestones { get; set; } = [];

    public double Gamma { get; set; } = 0.1;

    /// <summary>
    /// MMEngine's param_scheduler list (LinearLR, MultiStepLR, CosineAnnealingLR, PolyLR, …, each with begin, end, by_epoch,
    /// convert_to_iter_based), kept as written and read by <see cref="ParamSchedulerList.Read"/>; null: the fixed schedule
    /// above. While set, policy, warmup_iters, warmup_ratio, power, min_lr, milestones and gamma are inert, and a config
    /// writing any of them is refused (defaults pass only in a spelled-out section: a work dir's config.yaml).
    /// </summary>
    public ConfigList? ParamScheduler { get; set; }

    /// <summary>
    /// The iterations per epoch an epoch-counted schedule was resolved with (set by <c>Engine.EpochSchedule.Resolve</c> on its
    /// iteration-counted copy, no config key): param_scheduler entries with by_epoch still count epochs, stepping at its multiples.
    /// </summary>
    [ConfigIgnore]
    public int? EpochLength { get; set; }

    /// <summary>
    /// The iterations of an iteration-counted schedule; an epoch-counted one must be resolved against its data first
    /// (<c>Engine.EpochSchedule.Resolve</c>), so no caller can mistake epochs for iterations.
    /// </summary>
    public int IterationCount() => MaxEpochs is null
        ? MaxIters ?? DefaultMaxIters
        : throw new InvalidOperationException("schedule.max_epochs is set: resolve the schedule to iterations against the training loader's epoch first (EpochSchedule.Resolve)");
}
