namespace Vim.Core.Config;

/// <summary>Where a config value came from: a file and line, or a command-line override.</summary>
public sealed record ConfigSource(string Origin, int Line)
{
    public static ConfigSource Override(string text) => new($"--set {text}", 0);

    public override string ToString() => Line > 0 ? $"{Origin}:{Line}" : Origin;
}
