namespace Vim.Core.Config;

/// <summary>Which settings two merged configs (as <see cref="ConfigWriter"/> writes them) set differently.</summary>
public static class ConfigDifferences
{
    /// <summary>
    /// One line per setting whose value differs, <c>key: before → after</c> (<c>(absent)</c> where one side lacks it), in
    /// the newer config's key order, then the settings only the older one has. A list is one value.
    /// </summary>
    public static IReadOnlyList<string> Between(string beforeYaml, string afterYaml)
    {
        var before = Settings(ConfigLoader.Parse(beforeYaml, "the earlier config"));
        var after = Settings(ConfigLoader.Parse(afterYaml, "the current config"));
        var lookup = before.ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var lines = new List<string>();
        foreach (var (key, value) in after)
        {
            seen.Add(key);
            var old = lookup.GetValueOrDefault(key);
            if (old != value) lines.Add($"{key}: {old ?? "(absent)"} → {value}");
        }
        foreach (var (key, value) in before)
            if (!seen.Contains(key)) lines.Add($"{key}: {value} → (absent)");
        return lines;
    }

    private static List<KeyValuePair<string, string>> Settings(ConfigNode root)
    {
        var settings = new List<KeyValuePair<string, string>>();
        void Walk(ConfigNode node, string path)
        {
            if (node is ConfigMap { Count: > 0 } map)
            {
                foreach (var key in map.Keys) Walk(map[key]!, path.Length == 0 ? key : $"{path}.{key}");
                return;
            }
            settings.Add(new(path, ConfigWriter.Inline(node)));
        }
        Walk(root, "");
        return settings;
    }
}
