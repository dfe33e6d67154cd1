namespace Vim.Core.Config;

/// <summary>
/// A list key that also takes a single value, read as the list of that one value, and is written back as the value
/// while the list holds one: a config that named one item before the key took lists reads and prints as it did.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ScalarOrListAttribute : Attribute;

/// <summary>
/// A public property of a schema class that is no key of its own (a typed view of another key, kept for code that
/// sets or reads it): the binder neither binds nor writes it.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigIgnoreAttribute : Attribute;
