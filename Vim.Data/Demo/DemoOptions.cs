namespace Vim.Data.Demo;

/// <summary>Size and seed of a generated demo dataset.</summary>
public sealed record DemoOptions
{
    public DemoKind Kind { get; init; } = DemoKind.Coco;
    public required string OutputDir { get; init; }
    public int TrainImages { get; init; } = 64;
    public int ValImages { get; init; } = 16;
    public int Seed { get; init; }
    public int Width { get; init; } = 256;
    public int Height { get; init; } = 256;

    /// <summary>".jpg" (the real datasets' format) or ".png" (lossless, for exact colour checks).</summary>
    public string ImageExtension { get; init; } = ".jpg";
}
