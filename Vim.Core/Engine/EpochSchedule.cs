using Vim.Core.Config;

namespace Vim.Core.Engine;

/// <summary>
/// A run's length in iterations, with the epoch it counts in where schedule.max_epochs set it: <see cref="Config"/> is
/// iteration-counted throughout (max_iters, milestones, eval and checkpoint intervals), what the trainer and `vim config lr`
/// run on.
/// </summary>
/// <param name="IterationsPerEpoch">The training loader's iterations per epoch for an epoch-counted run; null for an iteration-counted one.</param>
public sealed record TrainingLength(ExperimentConfig Config, int? IterationsPerEpoch)
{
    public int MaxIters => Config.Schedule.IterationCount();

    /// <summary>The epochs the run was configured with (null: it counts iterations).</summary>
    public int? MaxEpochs => IterationsPerEpoch is { } perEpoch ? MaxIters / perEpoch : null;

    /// <summary>
    /// The (1-based) epoch an iteration (0-based) belongs to and its 1-based place in it, as MMEngine logs
    /// <c>Epoch(train) [e][i/n]</c>; null for an iteration-counted run. <paramref name="done"/> iterations complete
    /// iteration done − 1, so the last of an epoch reports [e][n/n].
    /// </summary>
    public (int Epoch, int InEpoch)? EpochAfter(int done) =>
        IterationsPerEpoch is { } perEpoch && done > 0 ? ((done - 1) / perEpoch + 1, (done - 1) % perEpoch + 1) : null;

    /// <summary>
    /// Whether the run evaluates once <paramref name="done"/> iterations are complete, as MMEngine's train loops decide:
    /// from train.val_begin on, every train.eval_interval (in iterations here, so an epoch-counted run's fall on epoch ends)
    /// and at the last iteration; an eval_interval of 0 evaluates at the last iteration alone.
    /// </summary>
    public bool EvaluatesAfter(int done)
    {
        var train = Config.Train;
        if (done < train.ValBegin) return false;
        return done == MaxIters || (train.EvalInterval > 0 && done % train.EvalInterval == 0);
    }

    /// <summary>
    /// Where <paramref name="done"/> iterations stand, in the run's own unit: "iteration 48 of 80", or for an epoch-counted
    /// run "iteration 56 (epoch 8 of 12)" (the epoch the last completed iteration belongs to), so a line never sets
    /// iterations against epochs.
    /// </summary>
    public string Position(int done) => MaxEpochs is { } epochs
        ? $"iteration {done} (epoch {EpochAfter(done)?.Epoch ?? 0} of {epochs})"
        : $"iteration {done} of {MaxIters}";

    /// <summary>
    /// When the run evaluates, for the start-up line: "evaluations every 8 iterations", "… from iteration 16" with a later
    /// train.val_begin, or "no evaluation during training" (train.eval_interval 0: the last iteration's alone).
    /// </summary>
    public string EvaluationPlan()
    {
        var train = Config.Train;
        if (train.EvalInterval == 0) return $"no evaluation during training (one after the last iteration, {MaxIters}: train.eval_interval 0)";
        // The first iteration from val_begin on that evaluates: a multiple of the interval, or the last one.
        int first = (int)Math.Min(MaxIters, (train.ValBegin + train.EvalInterval - 1L) / train.EvalInterval * train.EvalInterval);
        return $"evaluations every {train.EvalInterval} iterations" + (first > train.EvalInterval ? $" from iteration {first} (train.val_begin)" : "");
    }
}

/// <summary>
/// MMEngine's EpochBasedTrainLoop on our iteration-based trainer: schedule.max_epochs, the multistep milestones and the
/// eval / checkpoint intervals are counted in epochs of the training loader as it really runs (its
/// <see cref="IBatchSource{TBatch}.BatchesPerEpoch"/>: the data.train_split splits, class-balanced and repeated, in
/// global batches of data.batch_size × processes with drop_last) and turned into iterations once, here, as MMEngine's
/// convert_to_iter_based does (epoch e → iteration e × iterations per epoch). Warmup stays in iterations (mmdet's
/// LinearLR with by_epoch=False), as does train.log_interval.
/// </summary>
public static class EpochSchedule
{
    /// <summary>
    /// The run's length: <paramref name="config"/> itself for an iteration-counted schedule, else a copy whose epoch-counted
    /// settings (max_epochs, milestones, train.eval_interval, checkpoint_interval and val_begin) are multiplied by
    /// <paramref name="iterationsPerEpoch"/> (and schedule.max_epochs cleared), checked as any
    /// iteration-counted config is.
    /// </summary>
    public static TrainingLength Resolve(ExperimentConfig config, int iterationsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Schedule.MaxEpochs is not { } epochs) return new TrainingLength(config, null);
        CheckSettings(config);
        if (iterationsPerEpoch < 1)
            throw new ArgumentOutOfRangeException(nameof(iterationsPerEpoch), iterationsPerEpoch, "an epoch has at least one iteration");
        int accumulate = config.Train.AccumulateSteps;
        // Each epoch end carries an evaluation or a checkpoint, and neither may fall mid-accumulation (TrainingSettings).
        if (accumulate > 1 && iterationsPerEpoch % accumulate != 0)
            throw new VimException($"schedule.max_epochs: an epoch of the training data is {iterationsPerEpoch} iterations, not a multiple of " +
                $"train.accumulate_steps ({accumulate}), so epoch ends (evaluations, checkpoints, the run's end) would fall mid-accumulation; " +
                "change data.batch_size or train.accumulate_steps, or count iterations (schedule.max_iters)");
        int Iterations(long count, string key)
        {
            long iterations = count * iterationsPerEpoch;
            if (iterations > int.MaxValue)
                throw new VimException($"{key}: {count} epochs of {iterationsPerEpoch} iterations are {iterations} iterations, more than {int.MaxValue}");
            return (int)iterations;
        }
        var resolved = config.Copy();
        resolved.Schedule.MaxEpochs = null;
        resolved.Schedule.MaxIters = Iterations(epochs, "schedule.max_epochs");
        // param_scheduler keeps its entries as written: by_epoch ones step at multiples of this (ChainedParamSchedule.Resolve).
        resolved.Schedule.EpochLength = iterationsPerEpoch;
        resolved.Schedule.Milestones = config.Schedule.Milestones.Select(m => Iterations(m, "schedule.milestones")).ToList();
        resolved.Train.EvalInterval = Iterations(config.Train.EvalInterval, "train.eval_interval");
        resolved.Train.CheckpointInterval = Iterations(config.Train.CheckpointInterval, "train.checkpoint_interval");
        // MMEngine's EpochBasedTrainLoop evaluates from the end of epoch val_begin on: its last iteration.
        resolved.Train.ValBegin = Iterations(config.Train.ValBegin, "train.val_begin");
        // MMEngine's EMAHook starts in the epoch e (from 0) with e + 1 ≥ begin_epoch, and its first update there copies the
        // model: the copies run through the first iteration of epoch begin_epoch, which ema_begin_iter counts from 1.
        if (config.Train.EmaBeginEpoch > 0)
        {
            resolved.Train.EmaBeginIter = Iterations(config.Train.EmaBeginEpoch - 1, "train.ema_begin_epoch") + 1;
            resolved.Train.EmaBeginEpoch = 0;
        }
        TrainingSettings.Check(resolved);
        return new TrainingLength(resolved, iterationsPerEpoch);
    }

    /// <summary>
    /// What an epoch-counted schedule must hold before its epoch is known. A setting written in iterations and inherited
    /// (a base schedule's milestones or intervals) would, counted in epochs, never apply: one past max_epochs is refused,
    /// naming it, rather than read as thousands of epochs. Every such key is named in one message.
    /// </summary>
    public static void CheckSettings(ExperimentConfig config)
    {
        var schedule = config.Schedule;
        if (schedule.MaxEpochs is not { } epochs) return;
        if (schedule.MaxIters is { } iterations)
            throw new VimException(BothLengths(iterations, epochs, null, null));
        if (epochs < 1) throw new VimException($"schedule.max_epochs must be at least 1, got {epochs}");
        var problems = new List<string>();
        if (schedule.Policy == LrPolicy.Multistep && schedule.Milestones.Any(m => m >= epochs))
            problems.Add($"schedule.milestones [{string.Join(", ", schedule.Milestones)}] (each must be an epoch below max_epochs, after which the lr drops)");
        if (config.Train.EvalInterval > epochs)
            problems.Add($"train.eval_interval {config.Train.EvalInterval} (epochs between evaluations: at most max_epochs, or 0 for the end only)");
        if (config.Train.CheckpointInterval > epochs)
            problems.Add($"train.checkpoint_interval {config.Train.CheckpointInterval} (epochs between checkpoints: at most max_epochs)");
        if (config.Train.ValBegin > epochs)
            problems.Add($"train.val_begin {config.Train.ValBegin} (the first epoch after which to evaluate: at most max_epochs)");
        if (problems.Count > 0)
            throw new VimException($"schedule.max_epochs is {epochs}, so these settings count epochs, and exceed it (written in iterations, or inherited " +
                $"from an iteration-counted base?): {string.Join("; ", problems)}. Set them in epochs, e.g. --set train.eval_interval=1 " +
                "--set train.checkpoint_interval=1 --set 'schedule.milestones=[8, 11]' as mmdet's 1x schedule");
    }

    /// <summary>
    /// The refusal of a config setting both lengths, naming where each was written where known: either may come from a
    /// base file, and neither wins silently (an epoch-counted run would reread the other's milestones and intervals).
    /// </summary>
    public static string BothLengths(int maxIters, int maxEpochs, string? itersSource, string? epochsSource)
    {
        static string At(string? source) => source is null ? "" : $" ({source})";
        return $"schedule.max_iters {maxIters}{At(itersSource)} and schedule.max_epochs {maxEpochs}{At(epochsSource)} both set the run's length; " +
            "keep one: --set schedule.max_iters=null to count epochs (milestones, train.eval_interval and train.checkpoint_interval then count " +
            "epochs too), or --set schedule.max_epochs=null to count iterations";
    }

    /// <summary>
    /// A resumed epoch-counted run continues its schedule only where the checkpoint's data position is the iteration's
    /// place in an epoch of this run's length: a changed dataset, data.train_repeat, data.class_balanced_thr, batch size or
    /// process count would shift every later epoch end, milestone and evaluation against the data, so it is refused, naming
    /// both counts. (An iteration-counted run has no epoch to keep.)
    /// </summary>
    public static void CheckResume(TrainingLength length, int iteration, DataPosition position, long globalBatch, string checkpoint)
    {
        if (length.IterationsPerEpoch is not { } perEpoch) return;
        // A source may report the end of an epoch as its last sample count rather than the next epoch's start.
        long batch = position.IndexInEpoch / globalBatch;
        bool aligned = position.IndexInEpoch % globalBatch == 0;
        long at = batch >= perEpoch ? (position.Epoch + 1L) * perEpoch : position.Epoch * (long)perEpoch + batch;
        if (aligned && at == iteration) return;
        throw new VimException(
            $"--resume {checkpoint}: the checkpoint's iteration {iteration} stands at sample {position.IndexInEpoch} of data epoch {position.Epoch + 1}, " +
            $"but an epoch of this run is {perEpoch} iterations of {globalBatch} samples (data.batch_size × processes), which puts iteration {iteration} " +
            $"at sample {iteration % perEpoch * globalBatch} of epoch {iteration / perEpoch + 1}: the epoch length changed since the checkpoint " +
            "(the training splits, data.train_repeat, data.class_balanced_thr, data.batch_size or the process count), and schedule.max_epochs, " +
            "the milestones and the intervals would no longer fall on epoch ends. Resume with the data and processes it was trained with");
    }
}
