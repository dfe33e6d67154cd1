namespace Vim.Data.Transforms;

/// <summary>mmseg RandomCrop: a window of at most Height×Width at a uniform integer offset.</summary>
public sealed record RandomCropOptions
{
    public int Height { get; init; } = 512;
    public int Width { get; init; } = 512;

    /// <summary>Retry (up to 10 times) while one class covers this fraction or more of the crop's labelled pixels.</summary>
    public double CatMaxRatio { get; init; } = 1.0;
    public int IgnoreIndex { get; init; } = 255;
}
