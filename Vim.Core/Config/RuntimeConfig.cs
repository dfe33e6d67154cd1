namespace Vim.Core.Config;

public sealed class RuntimeConfig
{
    public int Seed { get; set; }

    /// <summary>Intra-op threads for libtorch and our kernels; 0 uses every core.</summary>
    public int Threads { get; set; }

    /// <summary>cpu or cuda.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Where logs, checkpoints and reports go; defaults to work_dirs/&lt;config name&gt;.</summary>
    public string? WorkDir { get; set; }
}
