namespace Vim.Core.Config;

/// <summary>An iteration-based learning-rate schedule: linear warmup, then the main policy.</summary>
public sealed class ScheduleConfig
{
    public int MaxIters { get; set; } = 60000;

    public LrPolicy Policy { get; set; } = LrPolicy.Poly;

    public int WarmupIters { get; set; } = 1500;

    /// <summary>Warmup starts at lr × this factor and rises linearly to lr.</summary>
    public double WarmupRatio { get; set; } = 1e-6;

    /// <summary>Poly power.</summary>
    public double Power { get; set; } = 1.0;

    /// <summary>Floor for poly and cosine.</summary>
    public double MinLr { get; set; }

    /// <summary>Multistep: iterations at which the lr is multiplied by <see cref="Gamma"/>.</summary>
    public List<int> Milestones { get; set; } = [];

    public double Gamma { get; set; } = 0.1;
}
