namespace Vim.Data.Loading;

/// <summary>What evaluation needs to map a prediction back to the original image.</summary>
public sealed record SampleMeta(
    long ImageId,
    string FilePath,
    int OriginalHeight,
    int OriginalWidth,
    int ContentHeight,
    int ContentWidth,
    double ScaleX,
    double ScaleY,
    bool Flipped);
