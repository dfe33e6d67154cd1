namespace Vim.Data.Coco;

/// <summary>A category entry of a COCO dataset (the dataset's own, possibly non-contiguous, id).</summary>
public sealed record CocoCategory(long Id, string Name, string? Supercategory);
