namespace Vim.Core.Config;

/// <summary>
/// One entry of optimizer.custom_keys (mmengine's paramwise_cfg.custom_keys): multipliers for the parameters whose
/// name contains the entry's key.
/// </summary>
public sealed class CustomKeyConfig
{
    /// <summary>Multiplies the matched parameters' learning rate, after layer decay; 0 freezes them (no gradient, no update).</summary>
    public double LrMult { get; set; } = 1.0;

    /// <summary>Multiplies the weight decay the no_decay rule gives them (an exempt parameter stays at 0).</summary>
    public double DecayMult { get; set; } = 1.0;
}
