using System.Text;
using Vim.Core.IO;

namespace Vim.Core.Config;

/// <summary>Writes a config tree as block-style YAML that <see cref="ConfigLoader"/> reads back unchanged.</summary>
public static class ConfigWriter
{
    public static string ToYaml(ConfigNode node)
    {
        var sb = new StringBuilder();
        if (node is ConfigMap map) WriteMap(sb, map, 0);
        else sb.Append(Inline(node)).Append('\n');
        return sb.ToString();
    }

    /// <summary>Writes atomically so an existing file is never left half-written.</summary>
    public static void Save(ConfigNode node, string path) => AtomicFile.WriteText(path, ToYaml(node));

    private static void WriteMap(StringBuilder sb, ConfigMap map, int indent)
    {
        foreach (var key in map.Keys)
        {
            var value = map[key]!;
            sb.Append(' ', indent).Append(key).Append(':');
            WriteValue(sb, value, indent);
        }
    }

    private static void WriteValue(StringBuilder sb, ConfigNode value, int indent)
    {
        switch (value)
        {
            case ConfigMap { Count: 0 }:
                sb.Append(" {}\n");
                break;
            case ConfigMap m:
                sb.Append('\n');
                WriteMap(sb, m, indent + 2);
                break;
            case ConfigList l when l.Items.All(i => i is ConfigScalar):
                sb.Append(' ').Append(Inline(l)).Append('\n');
                break;
            case ConfigList l:
                sb.Append('\n');
                foreach (var item in l.Items)
                {
                    sb.Append(' ', indent + 2).Append("- ");
                    if (item is ConfigMap im && im.Count > 0)
                    {
                        var nested = new StringBuilder();
                        WriteMap(nested, im, indent + 4);
                        sb.Append(nested.ToString().TrimStart());
                    }
                    else
                    {
                        sb.Append(Inline(item)).Append('\n');
                    }
                }
                break;
            default:
                sb.Append(' ').Append(Inline(value)).Append('\n');
                break;
        }
    }

    /// <summary>
    /// The `--set` text that sets <paramref name="keyPath"/> to <paramref name="value"/>, the value quoted where YAML would
    /// read it as something else (a path with ": " or " #", the string "null"), so ConfigLoader gives the value back.
    /// </summary>
    public static string Override(string keyPath, object? value) => $"{keyPath}={Inline(ConfigBinder.ToNode(value))}";

    internal static string Inline(ConfigNode node) => node switch
    {
        ConfigScalar { IsNull: true } => "null",
        ConfigScalar { Quoted: true } s => "'" + s.Value!.Replace("'", "''") + "'",
        ConfigScalar s => s.Value!,
        ConfigList l => "[" + string.Join(", ", l.Items.Select(Inline)) + "]",
        ConfigMap { Count: 0 } => "{}",
        ConfigMap m => "{" + string.Join(", ", m.Keys.Select(k => $"{k}: {Inline(m[k]!)}")) + "}",
        _ => "",
    };
}
