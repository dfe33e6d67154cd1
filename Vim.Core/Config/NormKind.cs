namespace Vim.Core.Config;

/// <summary>The normalisation layer of the segmentation heads' conv blocks.</summary>
public enum NormKind
{
    /// <summary>BatchNorm with each rank's own batch statistics.</summary>
    [ConfigKey("bn")]
    BatchNorm,

    /// <summary>BatchNorm with the statistics of the global batch over all ranks (the official configs' SyncBN); BatchNorm in a single process.</summary>
    [ConfigKey("syncbn")]
    SyncBatchNorm,
}
