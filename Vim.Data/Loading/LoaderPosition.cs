namespace Vim.Data.Loading;

/// <summary>Where an iteration-based run is in the data stream; checkpoint it to resume exactly.</summary>
public readonly record struct LoaderPosition(int Epoch, int BatchIndex);
