namespace Vim.Data.Loading;

/// <summary>Which targets a batch carries.</summary>
public enum BatchKind
{
    /// <summary>Per-image boxes, labels, crowd flags and (optional) masks.</summary>
    Detection,
    /// <summary>An N×H×W int64 label tensor (255 = ignore).</summary>
    Segmentation,
    /// <summary>The images and their metas alone: inference, where labels are absent (a test split) or read at the original size instead.</summary>
    Images,
}
