namespace Vim.Core.Config;

public sealed class TrainConfig
{
    /// <summary>Evaluate on the validation split every this many iterations (0: only at the end).</summary>
    public int EvalInterval { get; set; } = 1000;

    public int CheckpointInterval { get; set; } = 1000;

    /// <summary>How many periodic checkpoints to keep besides the best one.</summary>
    public int KeepLast { get; set; } = 3;

    public int LogInterval { get; set; } = 50;

    /// <summary>Gradient accumulation: optimiser steps every this many batches.</summary>
    public int AccumulateSteps { get; set; } = 1;

    /// <summary>Exponential moving average of the weights (decay per optimiser step); null disables it.</summary>
    public double? EmaMomentum { get; set; }

    /// <summary>On a NaN/Inf loss: false stops the run (naming the iteration and the last good checkpoint), true skips the step.</summary>
    public bool SkipNonFiniteLoss { get; set; }

    /// <summary>Stop when the validation metric stops improving (MMEngine's EarlyStoppingHook); null: train to schedule.max_iters.</summary>
    public EarlyStoppingConfig? EarlyStopping { get; set; }
}
