namespace Vim.Core.Engine;

/// <summary>Where an endless, epoch-shuffled data stream stands: enough to continue it exactly after a resume.</summary>
public sealed record DataPosition(int Epoch, long IndexInEpoch)
{
    public static DataPosition Start { get; } = new(0, 0);
}
