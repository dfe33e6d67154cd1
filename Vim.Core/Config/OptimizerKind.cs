namespace Vim.Core.Config;

public enum OptimizerKind
{
    [ConfigKey("adamw")]
    AdamW,
    Sgd,
}
