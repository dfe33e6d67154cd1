namespace Vim.Data.Transforms;

/// <summary>detectron2 FixedSizeCrop: a random window of at most Height×Width; optional padding up to it.</summary>
public sealed record FixedSizeCropOptions
{
    public int Height { get; init; } = 1024;
    public int Width { get; init; } = 1024;

    /// <summary>Pad smaller images up to the crop size (the ViTDet recipe leaves this off; the model pads).</summary>
    public bool Pad { get; init; }
    public int PadValue { get; init; } = 128;
    public int SegPadValue { get; init; } = 255;
}
