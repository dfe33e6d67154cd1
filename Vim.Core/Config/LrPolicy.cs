namespace Vim.Core.Config;

public enum LrPolicy
{
    Constant,
    Poly,
    Cosine,
    Multistep,
}
