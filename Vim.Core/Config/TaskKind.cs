namespace Vim.Core.Config;

public enum TaskKind
{
    Detection,
    Segmentation,
}
