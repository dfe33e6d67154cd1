namespace Vim.Core.Config;

public sealed class TrainConfig
{
    /// <summary>Evaluate on the validation split every this many iterations, epochs while schedule.max_epochs is set (0: only at the end).</summary>
    public int EvalInterval { get; set; } = 1000;

    /// <summary>
    /// Evaluate only once this many epochs (iterations while schedule.max_iters counts the run) are complete, MMEngine's
    /// val_begin: from then on every eval_interval and at the end; at most the run's length. Early stopping counts only
    /// the evaluations that run.
    /// </summary>
    public int ValBegin { get; set; } = 1;

    /// <summary>Write a checkpoint every this many iterations, epochs while schedule.max_epochs is set.</summary>
    public int CheckpointInterval { get; set; } = 1000;

    /// <summary>How many periodic checkpoints to keep besides the best one.</summary>
    public int KeepLast { get; set; } = 3;

    /// <summary>Log the interval's means every this many iterations (iterations in an epoch-counted run too, as MMEngine's LoggerHook).</summary>
    public int LogInterval { get; set; } = 50;

    /// <summary>Gradient accumulation: optimiser steps every this many batches.</summary>
    public int AccumulateSteps { get; set; } = 1;

    /// <summary>Exponential moving average of the weights (decay per optimiser step); null disables it.</summary>
    public double? EmaMomentum { get; set; }

    /// <summary>
    /// With train.ema_momentum: training's evaluations (their metrics, best.safetensors, train.early_stopping) run with the
    /// EMA weights swapped in, as MMEngine's EMAHook validates; false judges the trained weights.
    /// </summary>
    public bool EmaValidate { get; set; } = true;

    /// <summary>
    /// MMEngine's EMAHook begin_iter: the optimiser steps up to this iteration (counted from 1) copy the model into the
    /// average, later ones average it; 0: every step averages, from the starting weights. MMEngine updates from the
    /// iteration index i (from 0) with i + 1 ≥ begin_iter, and its first update copies the model (the averaged model's step
    /// 0), so its begin_iter B ≥ 1 is ours, and its default (0) is our 1. Not with ema_begin_epoch.
    /// </summary>
    public int EmaBeginIter { get; set; }

    /// <summary>
    /// MMEngine's EMAHook begin_epoch: the average copies the model through the first iteration of this epoch (counted from
    /// 1), as MMEngine's, which starts in the epoch e (from 0) with e + 1 ≥ begin_epoch; 0: not set. Needs schedule.max_epochs.
    /// </summary>
    public int EmaBeginEpoch { get; set; }

    /// <summary>On a NaN/Inf loss: false stops the run (naming the iteration and the last good checkpoint), true skips the step.</summary>
    public bool SkipNonFiniteLoss { get; set; }

    /// <summary>Stop when the validation metric stops improving (MMEngine's EarlyStoppingHook); null: train to schedule.max_iters.</summary>
    public EarlyStoppingConfig? EarlyStopping { get; set; }
}
