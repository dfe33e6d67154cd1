namespace Vim.Data.Transforms;

/// <summary>mmseg CLAHE (mmcv.clahe): OpenCV's contrast-limited adaptive histogram equalisation of each channel.</summary>
public sealed record ClaheOptions
{
    /// <summary>OpenCV's clipLimit: a histogram bin is clipped at this multiple of the tile's mean bin count; 0 turns clipping off.</summary>
    public double ClipLimit { get; init; } = 40.0;

    /// <summary>OpenCV's tileGridSize as mmcv hands it over: [tiles across, tiles down].</summary>
    public int[] TileGridSize { get; init; } = [8, 8];
}
