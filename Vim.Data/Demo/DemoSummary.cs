namespace Vim.Data.Demo;

/// <summary>What a demo generation wrote.</summary>
public sealed record DemoSummary(int Images, int Instances, int CrowdRegions, int EmptyImages, int OccludedInstances);
