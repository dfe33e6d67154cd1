namespace Vim.Core.Diagnostics;

/// <summary>
/// The named parts of one training iteration that <see cref="StageProfiler"/> times under `vim train --profile`.
/// <see cref="Iteration"/> spans the others; the model's own stages (e.g. the detector's backbone, rpn, roi_heads,
/// mask_targets, the segmentor's backbone and decode_head) run inside <see cref="Forward"/> and are reported as parts of it.
/// </summary>
public static class TrainingStages
{
    /// <summary>The whole iteration: data through EMA.</summary>
    public const string Iteration = "iteration";

    /// <summary>The next batch from the loader (decoding and the pipeline when not prefetched).</summary>
    public const string Data = "data";

    /// <summary>The task's losses: model forward, target assignment and loss terms.</summary>
    public const string Forward = "forward";

    /// <summary>Summing the loss terms, reading them to the host, and autograd's backward.</summary>
    public const string Backward = "backward";

    /// <summary>Averaging gradients over the processes (data parallel only).</summary>
    public const string GradSync = "grad_sync";

    /// <summary>Gradient-norm clipping (optimizer.grad_clip_norm).</summary>
    public const string GradClip = "grad_clip";

    /// <summary>The optimiser's step (its learning rates per group, weight decay, moments and update).</summary>
    public const string Optimizer = "optimizer";

    /// <summary>The exponential moving average's update.</summary>
    public const string Ema = "ema";

    /// <summary>The trainer's own stages, in the order they run.</summary>
    public static readonly IReadOnlyList<string> OfTrainer = [Iteration, Data, Forward, Backward, GradSync, GradClip, Optimizer, Ema];
}
