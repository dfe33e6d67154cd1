namespace Vim.Data.Coco;

/// <summary>An image entry of a COCO dataset; width/height are 0 when the file does not give them.</summary>
public sealed record CocoImage(long Id, int Width, int Height, string? FileName);
