namespace Vim.Core.Config;

/// <summary>Where training records go besides the console (runtime.vis_backends; MMEngine's visualizer vis_backends).</summary>
public enum VisBackend
{
    /// <summary>work_dir/log.jsonl (MMEngine's LocalVisBackend): what `vim report` and resumed runs read, so every run has it.</summary>
    Local,

    /// <summary>TensorBoard event files in work_dir/tensorboard/ (MMEngine's TensorboardVisBackend).</summary>
    Tensorboard,
}
