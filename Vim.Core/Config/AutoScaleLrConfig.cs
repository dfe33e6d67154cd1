namespace Vim.Core.Config;

/// <summary>
/// mmdet's auto_scale_lr: the linear scaling rule (Goyal et al., 2017). A recipe's optimizer.lr was tuned for
/// <see cref="BaseBatchSize"/> images per optimiser step; a run with another global batch (fewer processes, say) scales
/// it by the ratio when <see cref="Enable"/> is set (`vim train --auto-scale-lr`). Off by default, as in mmdet.
/// </summary>
public sealed class AutoScaleLrConfig
{
    public bool Enable { get; set; }

    /// <summary>
    /// The images per optimiser step optimizer.lr was tuned for. The run's own count is data.batch_size × processes ×
    /// train.accumulate_steps (mmengine leaves the accumulation out; an accumulated step averages that many batches).
    /// </summary>
    public int BaseBatchSize { get; set; } = 16;
}
