namespace Vim.Core.Config;

public enum SegmentationLossKind
{
    CrossEntropy,
    Dice,
    Lovasz,
}
