namespace Vim.Data.Evaluation;

/// <summary>What a COCO evaluation compares: boxes, or instance masks.</summary>
public enum CocoIouType
{
    Bbox,
    Segm,
}
