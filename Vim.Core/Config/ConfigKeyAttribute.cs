namespace Vim.Core.Config;

/// <summary>Overrides the YAML spelling of a config property or enum value (by default its name in snake_case).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ConfigKeyAttribute(string key) : Attribute
{
    public string Key { get; } = key;
}
