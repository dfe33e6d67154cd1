using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Vim.Core.Config;

/// <summary>
/// Reads YAML configs with MMEngine-style inheritance: <c>_base_</c> names one file or a list of
/// files (relative to the including file), merged in order with later files winning; mappings
/// merge key by key, lists and scalars replace, and a mapping with <c>_delete_: true</c> replaces
/// the inherited mapping instead of merging into it. Command-line overrides (<c>a.b.c=value</c>)
/// are applied last.
/// </summary>
public static partial class ConfigLoader
{
    public const string BaseKey = "_base_";
    public const string DeleteKey = "_delete_";

    /// <summary>Loads a config file with its bases and applies the overrides.</summary>
    public static ConfigMap Load(string path, IEnumerable<string>? overrides = null)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new VimException("the config path is empty; expected a YAML file such as configs/seg/upernet_vim_tiny_demo_ade.yaml");
        var merged = LoadWithBases(Path.GetFullPath(path), new Stack<string>(), includedFrom: null);
        RemoveDeleteMarkers(merged);
        foreach (var text in overrides ?? []) ApplyOverride(merged, text);
        return merged;
    }

    /// <summary>
    /// Drops every _delete_ key left after merging: where a mapping had nothing inherited to replace (a file without
    /// bases, a key the bases lack, a mapping inside a replaced one) the marker has nothing to do, as in MMEngine.
    /// </summary>
    private static void RemoveDeleteMarkers(ConfigNode node)
    {
        switch (node)
        {
            case ConfigMap map:
                map.Remove(DeleteKey);
                foreach (var key in map.Keys.ToList()) RemoveDeleteMarkers(map[key]!);
                break;
            case ConfigList list:
                foreach (var item in list.Items) RemoveDeleteMarkers(item);
                break;
        }
    }

    /// <summary>Parses YAML text into a tree (no <c>_base_</c> resolution). Used for files and override values.</summary>
    /// <param name="reportLine">False for a --set value: its one line has no number worth naming, and "VALUE:2" reads as part of the value.</param>
    public static ConfigNode Parse(string text, string origin, bool reportLine = true)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new VimException($"{(reportLine ? $"{origin}:{e.Start.Line}" : origin)}: invalid YAML: {e.InnerException?.Message ?? e.Message}");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet fails these ways, without a position, on some malformed flow collections (e.g. "[1, 2,: [3]").
            throw new VimException($"{origin}: invalid YAML: the parser gave up ({e.Message}); look for an unbalanced [ ] or {{ }} or a stray ':'");
        }
        if (stream.Documents.Count == 0) return new ConfigMap(new ConfigSource(origin, 1));
        if (stream.Documents.Count > 1) throw new VimException($"{origin}: expected one YAML document, found {stream.Documents.Count}");
        return Convert(stream.Documents[0].RootNode, origin);
    }

    private static ConfigMap LoadWithBases(string fullPath, Stack<string> chain, ConfigSource? includedFrom)
    {
        if (chain.Contains(fullPath))
        {
            var cycle = chain.Reverse().SkipWhile(p => p != fullPath).Append(fullPath).Select(DisplayPath);
            throw new VimException($"{includedFrom}: cyclic _base_ inheritance: {string.Join(" -> ", cycle)}");
        }
        if (!File.Exists(fullPath))
        {
            throw includedFrom is null
                ? new VimException($"config file not found: {DisplayPath(fullPath)}")
                : new VimException($"{includedFrom}: _base_ file not found: {DisplayPath(fullPath)}");
        }
        var display = DisplayPath(fullPath);
        var root = Parse(File.ReadAllText(fullPath), display);
        if (root is ConfigScalar { IsNull: true }) root = new ConfigMap(new ConfigSource(display, 1));
        if (root is not ConfigMap map)
            throw new VimException($"{root.Source}: the top level of a config must be a mapping of keys to values");

        if (!map.TryGet(BaseKey, out var baseNode)) return map;
        map.Remove(BaseKey);

        var basePaths = baseNode switch
        {
            ConfigScalar { IsNull: false } s => [s],
            ConfigList list => list.Items.Select(i => i as ConfigScalar is { IsNull: false } s
                ? s
                : throw new VimException($"{i.Source}: _base_ entries must be file paths")).ToList(),
            _ => throw new VimException($"{baseNode.Source}: _base_ must be a file path or a list of file paths"),
        };

        chain.Push(fullPath);
        ConfigMap? result = null;
        foreach (var entry in basePaths)
        {
            var basePath = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(fullPath)!, entry.Value!));
            var loaded = LoadWithBases(basePath, chain, entry.Source);
            result = result is null ? loaded : (ConfigMap)Merge(result, loaded);
        }
        chain.Pop();
        return (ConfigMap)Merge(result!, map);
    }

    /// <summary>Merges <paramref name="over"/> onto <paramref name="under"/> (which is not modified).</summary>
    public static ConfigNode Merge(ConfigNode under, ConfigNode over)
    {
        if (under is not ConfigMap baseMap || over is not ConfigMap overMap) return over.DeepClone();
        if (overMap[DeleteKey] is ConfigScalar { Value: "true" or "True" })
        {
            var replaced = (ConfigMap)overMap.DeepClone();
            replaced.Remove(DeleteKey);
            return replaced;
        }
        var result = (ConfigMap)baseMap.DeepClone();
        foreach (var key in overMap.Keys)
        {
            if (key == DeleteKey) continue;
            var value = overMap[key]!;
            var merged = result.TryGet(key, out var existing) ? Merge(existing, value) : value.DeepClone();
            result.Set(key, merged, overMap.KeySource(key));
        }
        return result;
    }

    /// <summary>Applies one <c>a.b.c=value</c> override; the value is parsed as YAML (so lists and null work).</summary>
    public static void ApplyOverride(ConfigMap root, string text)
    {
        int eq = text.IndexOf('=');
        if (eq <= 0) throw new VimException($"--set {text}: expected KEY.PATH=VALUE, e.g. --set optimizer.lr=0.0002");
        var path = text[..eq].Trim();
        var source = ConfigSource.Override(text);
        // "KEY=" means what an empty value means in a YAML file (null), not an empty document (an empty mapping).
        var valueText = text[(eq + 1)..];
        var value = Parse(string.IsNullOrWhiteSpace(valueText) ? "null" : valueText, source.Origin, reportLine: false);
        value = Reattribute(value, source);
        var parts = path.Split('.');
        if (parts.Any(string.IsNullOrWhiteSpace)) throw new VimException($"--set {text}: empty segment in key path '{path}'");
        if (Array.FindIndex(parts, p => BracketIndex().IsMatch(p)) is var bracketed and >= 0)
        {
            var match = BracketIndex().Match(parts[bracketed]);
            var dotted = string.Join('.', [.. parts[..bracketed], match.Groups[1].Value, match.Groups[2].Value, .. parts[(bracketed + 1)..]]);
            throw new VimException($"--set {text}: a list entry is addressed by a dotted index, as MMEngine's --cfg-options: --set {dotted}={valueText}");
        }

        ConfigNode node = root;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            var part = parts[i];
            switch (node)
            {
                case ConfigMap map:
                    if (!map.TryGet(part, out var child) || child is ConfigScalar { IsNull: true })
                    {
                        // A mapping made here would reach the schema as "must be a list, got a mapping", hiding that the list is unset.
                        if (IsListIndex(parts[i + 1])) throw NoListToIndex(text, string.Join('.', parts[..(i + 1)]), parts[i + 1]);
                        child = new ConfigMap(source);
                        map.Set(part, child, source);
                    }
                    node = child;
                    break;
                case ConfigList list when int.TryParse(part, out int index) && index >= 0 && index < list.Items.Count:
                    node = list.Items[index];
                    break;
                case ConfigList list:
                    throw NoSuchListEntry(text, string.Join('.', parts[..i]), part, list);
                default:
                    throw new VimException($"--set {text}: '{string.Join('.', parts[..(i + 1)])}' is not a mapping, cannot set '{path}'");
            }
        }
        var last = parts[^1];
        switch (node)
        {
            case ConfigMap map:
                var merged = map.TryGet(last, out var existing) ? Merge(existing, value) : value;
                map.Set(last, merged, source);
                break;
            case ConfigList list when int.TryParse(last, out int index) && index >= 0 && index < list.Items.Count:
                list.Items[index] = value;
                break;
            case ConfigList list:
                throw NoSuchListEntry(text, string.Join('.', parts[..^1]), last, list);
            default:
                throw new VimException($"--set {text}: the parent of '{last}' is not a mapping");
        }
    }

    // "is not a mapping" would misdirect: the list is there, the index (or a key written in its place) is what is wrong.
    private static VimException NoSuchListEntry(string text, string listPath, string part, ConfigList list) =>
        new($"--set {text}: '{listPath}' is a list of {list.Items.Count} entries, addressed by index" +
            (list.Items.Count == 0 ? "" : $" 0 to {list.Items.Count - 1} ('{listPath}.0.KEY=VALUE')") + $", not '{part}'");

    private static bool IsListIndex(string part) => part.Length > 0 && part.All(char.IsAsciiDigit);

    private static VimException NoListToIndex(string text, string listPath, string part) =>
        new($"--set {text}: '{listPath}' is not set (null or absent) here, so it has no entry {part} to address; " +
            $"set the whole list, e.g. --set '{listPath}=[...]'");

    /// <summary>A key path segment written as Python's list subscript, <c>param_scheduler[1]</c>.</summary>
    [GeneratedRegex(@"^([^\[\]]+)\[(\d+)\]$")]
    private static partial Regex BracketIndex();

    private static ConfigNode Reattribute(ConfigNode node, ConfigSource source) => node switch
    {
        ConfigScalar s => new ConfigScalar(s.Value, s.Quoted, source),
        ConfigList l => new ConfigList(l.Items.Select(i => Reattribute(i, source)), source),
        ConfigMap m => ReattributeMap(m, source),
        _ => node,
    };

    private static ConfigMap ReattributeMap(ConfigMap map, ConfigSource source)
    {
        var copy = new ConfigMap(source);
        foreach (var key in map.Keys) copy.Set(key, Reattribute(map[key]!, source), source);
        return copy;
    }

    private static ConfigNode Convert(YamlNode node, string origin)
    {
        // YamlDotNet marks an implicit one-pair mapping inside a flow list ([resize: {...}]) as starting at the file's
        // first character; its key says where it was written. (A mapping that does start there has its first key there too.)
        var start = node is YamlMappingNode { Children.Count: > 0 } pairs && node.Start.Index == 0 ? pairs.Children.First().Key.Start : node.Start;
        var source = new ConfigSource(origin, (int)start.Line);
        switch (node)
        {
            case YamlScalarNode scalar:
                bool quoted = scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted
                    or ScalarStyle.Literal or ScalarStyle.Folded;
                var value = scalar.Value;
                bool isNull = !quoted && (value is null or "" or "~" or "null" or "Null" or "NULL");
                return new ConfigScalar(isNull ? null : value, quoted, source);
            case YamlSequenceNode seq:
                return new ConfigList(seq.Children.Select(c => Convert(c, origin)), source);
            case YamlMappingNode mapping:
                var map = new ConfigMap(source);
                foreach (var (keyNode, valueNode) in mapping.Children)
                {
                    if (keyNode is not YamlScalarNode { Value: { } key })
                        throw new VimException($"{origin}:{keyNode.Start.Line}: config keys must be plain strings");
                    // Duplicate keys never get here: YamlDotNet rejects them while loading.
                    map.Set(key, Convert(valueNode, origin), new ConfigSource(origin, (int)keyNode.Start.Line));
                }
                return map;
            default:
                throw new VimException($"{source}: unsupported YAML node (anchors and aliases are fine, tags are not)");
        }
    }

    /// <summary>Paths are shown relative to the working directory when under it, so messages stay short.</summary>
    public static string DisplayPath(string fullPath)
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, fullPath);
        return relative.StartsWith("..", StringComparison.Ordinal) ? fullPath : relative;
    }
}
