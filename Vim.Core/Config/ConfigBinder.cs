using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Vim.Core.Config;

/// <summary>
/// Binds an untyped config tree to the typed schema (records with settable properties), rejecting
/// unknown keys (with the closest valid key) and values of the wrong type (with file and line),
/// and turns a typed config back into a tree for printing and saving.
/// </summary>
/// <remarks>
/// Keys are property names in snake_case unless <see cref="ConfigKeyAttribute"/> says otherwise.
/// Supported value types: string, bool, int, long, float, double, enums (snake_case names),
/// nullable forms of those, lists/arrays, string-keyed dictionaries and nested schema classes, and config nodes
/// (<see cref="ConfigList"/>, <see cref="ConfigMap"/>): a key whose schema lives in a project this one cannot reference
/// (data.train_pipeline's steps are Vim.Data's transforms) keeps its subtree as written, for its reader to bind with
/// <see cref="Bind{T}(ConfigNode, string)"/>.
/// </remarks>
public static class ConfigBinder
{
    public static T Bind<T>(ConfigMap map) where T : new() => (T)BindObject(typeof(T), map, "");

    public static object Bind(Type type, ConfigMap map) => BindObject(type, map, "");

    /// <summary>
    /// Binds a subtree kept as written (a config-node key) to its schema type <typeparamref name="T"/>; <paramref name="path"/>
    /// is the subtree's key path, which errors name with the file and line (e.g. <c>data.train_pipeline[2].resize.scales</c>).
    /// </summary>
    public static T Bind<T>(ConfigNode node, string path) => (T)BindValue(typeof(T), node, path, nullable: false)!;

    /// <summary>The schema's keys for a type, in declaration order.</summary>
    public static IReadOnlyList<(string Key, PropertyInfo Property)> KeysOf(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetIndexParameters().Length == 0 && p.GetCustomAttribute<ConfigIgnoreAttribute>() is null)
            .OrderBy(p => p.MetadataToken)
            .Select(p => (p.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? SnakeCase(p.Name), p))
            .ToList();

    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool boundary = i > 0 && char.IsUpper(c) && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1])
                || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1])));
            if (boundary) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>How a config spells an enum value (its snake_case name unless <see cref="ConfigKeyAttribute"/> says otherwise).</summary>
    public static string KeyOf(Enum value) => EnumKey(value.GetType(), value.ToString());

    private static string EnumKey(Type enumType, string name) =>
        enumType.GetField(name)?.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? SnakeCase(name);

    private static object BindObject(Type type, ConfigMap map, string path)
    {
        var instance = Activator.CreateInstance(type)
            ?? throw new InvalidOperationException($"config schema type {type.Name} needs a parameterless constructor");
        var keys = KeysOf(type);
        var byKey = keys.ToDictionary(k => k.Key, k => k.Property, StringComparer.Ordinal);
        foreach (var key in map.Keys)
        {
            var keyPath = Join(path, key);
            if (!byKey.TryGetValue(key, out var property))
            {
                var hint = ClosestMatch.Find(key, byKey.Keys);
                var valid = hint is not null
                    ? $"did you mean '{Join(path, hint)}'? (valid keys here: {string.Join(", ", byKey.Keys)})"
                    : $"'{(path.Length == 0 ? "the top level" : path)}' takes no keys";
                throw new VimException($"{map.KeySource(key)}: unknown key '{keyPath}'; {valid}");
            }
            var node = map[key]!;
            if (property.GetCustomAttribute<ScalarOrListAttribute>() is not null)
                node = node switch
                {
                    ConfigScalar { IsNull: false } one => new ConfigList([one], one.Source),
                    ConfigList => node,
                    _ => throw Mismatch(node, keyPath, "a value or a list of values", Kind(node)),
                };
            property.SetValue(instance, BindValue(property.PropertyType, node, keyPath, IsNullable(property)));
        }
        return instance;
    }

    private static bool IsNullable(PropertyInfo property) =>
        Nullable.GetUnderlyingType(property.PropertyType) is not null
        || new NullabilityInfoContext().Create(property).WriteState == NullabilityState.Nullable;

    private static object? BindValue(Type type, ConfigNode node, string path, bool nullable)
    {
        if (node is ConfigScalar { IsNull: true })
        {
            if (nullable) return null;
            throw Mismatch(node, path, Describe(type), "null");
        }
        var underlying = Nullable.GetUnderlyingType(type) ?? type;

        if (typeof(ConfigNode).IsAssignableFrom(underlying))
            return underlying.IsInstanceOfType(node) ? node.DeepClone() : throw Mismatch(node, path, Describe(underlying), Kind(node));
        if (underlying == typeof(string))
            return node is ConfigScalar s ? s.Value : throw Mismatch(node, path, "a string", Kind(node));
        if (underlying == typeof(bool))
        {
            var s = Scalar(node, path, "true or false");
            return s.Value switch
            {
                "true" or "True" or "TRUE" => true,
                "false" or "False" or "FALSE" => false,
                _ => throw Mismatch(node, path, "true or false", $"'{s.Value}'"),
            };
        }
        if (underlying == typeof(int) || underlying == typeof(long))
        {
            var s = Scalar(node, path, "an integer");
            if (!long.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v)
                || (underlying == typeof(int) && (v < int.MinValue || v > int.MaxValue)))
                throw Mismatch(node, path, "an integer", $"'{s.Value}'");
            return underlying == typeof(int) ? (object)(int)v : v;
        }
        if (underlying == typeof(double) || underlying == typeof(float))
        {
            var s = Scalar(node, path, "a number");
            double v = s.Value switch
            {
                ".inf" or ".Inf" or "+.inf" => double.PositiveInfinity,
                "-.inf" or "-.Inf" => double.NegativeInfinity,
                _ => double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                    ? d
                    : throw Mismatch(node, path, "a number", $"'{s.Value}'"),
            };
            return underlying == typeof(float) ? (object)(float)v : v;
        }
        if (underlying.IsEnum)
        {
            var names = Enum.GetNames(underlying).ToDictionary(n => EnumKey(underlying, n), n => n, StringComparer.Ordinal);
            var s = Scalar(node, path, $"one of {string.Join(", ", names.Keys)}");
            if (names.TryGetValue(s.Value!, out var name)) return Enum.Parse(underlying, name);
            var hint = ClosestMatch.Find(s.Value!, names.Keys);
            throw new VimException($"{node.Source}: '{path}' must be one of {string.Join(", ", names.Keys)}, got '{s.Value}'"
                + (hint is null ? "" : $"; did you mean '{hint}'?"));
        }
        if (ElementTypeOfList(underlying) is { } element)
        {
            if (node is not ConfigList list) throw Mismatch(node, path, "a list", Kind(node));
            var items = list.Items.Select((item, i) => BindValue(element, item, $"{path}[{i}]", nullable: false)).ToList();
            if (underlying.IsArray)
            {
                var array = Array.CreateInstance(element, items.Count);
                for (int i = 0; i < items.Count; i++) array.SetValue(items[i], i);
                return array;
            }
            var typed = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
            foreach (var item in items) typed.Add(item);
            return typed;
        }
        if (underlying.IsGenericType && underlying.GetGenericTypeDefinition() is var g
            && (g == typeof(Dictionary<,>) || g == typeof(IReadOnlyDictionary<,>))
            && underlying.GetGenericArguments()[0] == typeof(string))
        {
            if (node is not ConfigMap map) throw Mismatch(node, path, "a mapping", Kind(node));
            var valueType = underlying.GetGenericArguments()[1];
            var dict = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType))!;
            foreach (var key in map.Keys) dict[key] = BindValue(valueType, map[key]!, Join(path, key), nullable: false);
            return dict;
        }
        if (underlying.IsClass)
        {
            if (node is not ConfigMap map) throw Mismatch(node, path, "a mapping", Kind(node));
            return BindObject(underlying, map, path);
        }
        throw new InvalidOperationException($"config schema: unsupported property type {type} at '{path}'");
    }

    /// <summary>Turns a typed config back into a tree (every schema key, defaults included).</summary>
    public static ConfigNode ToNode(object? value, ConfigSource? source = null)
    {
        source ??= new ConfigSource("resolved", 0);
        switch (value)
        {
            case null:
                return new ConfigScalar(null, false, source);
            case string s:
                return new ConfigScalar(s, NeedsQuotes(s), source);
            case bool b:
                return new ConfigScalar(b ? "true" : "false", false, source);
            case Enum e:
                return new ConfigScalar(KeyOf(e), false, source);
            case ConfigNode node:
                return node.DeepClone();
            case double or float or int or long:
                return new ConfigScalar(FormatNumber(value), false, source);
            case IDictionary dict:
                var dmap = new ConfigMap(source);
                foreach (DictionaryEntry entry in dict) dmap.Set((string)entry.Key, ToNode(entry.Value, source), source);
                return dmap;
            case IEnumerable list:
                return new ConfigList(list.Cast<object?>().Select(i => ToNode(i, source)), source);
            default:
                var map = new ConfigMap(source);
                foreach (var (key, property) in KeysOf(value.GetType()))
                {
                    var node = ToNode(property.GetValue(value), source);
                    if (property.GetCustomAttribute<ScalarOrListAttribute>() is not null && node is ConfigList { Items.Count: 1 } single) node = single.Items[0];
                    map.Set(key, node, source);
                }
                return map;
        }
    }

    private static string FormatNumber(object value) => value switch
    {
        double d => double.IsPositiveInfinity(d) ? ".inf" : double.IsNegativeInfinity(d) ? "-.inf" : d.ToString("R", CultureInfo.InvariantCulture),
        float f => ((double)f).ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    private static bool NeedsQuotes(string s) =>
        s.Length == 0 || s is "null" or "~" or "true" or "false" || double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
        || s.IndexOfAny([':', '#', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`']) >= 0
        || char.IsWhiteSpace(s[0]) || char.IsWhiteSpace(s[^1]) || s[0] == '-';

    private static Type? ElementTypeOfList(Type type)
    {
        if (type.IsArray) return type.GetElementType();
        if (!type.IsGenericType) return null;
        var g = type.GetGenericTypeDefinition();
        return g == typeof(List<>) || g == typeof(IReadOnlyList<>) || g == typeof(IList<>) || g == typeof(IEnumerable<>)
            ? type.GetGenericArguments()[0]
            : null;
    }

    private static ConfigScalar Scalar(ConfigNode node, string path, string expected) => node switch
    {
        ConfigScalar { Quoted: false } s => s,
        ConfigScalar s => throw Mismatch(node, path, expected, $"the quoted string '{s.Value}'"),
        _ => throw Mismatch(node, path, expected, Kind(node)),
    };

    private static VimException Mismatch(ConfigNode node, string path, string expected, string got) =>
        new($"{node.Source}: '{path}' must be {expected}, got {got}");

    private static string Kind(ConfigNode node) => node switch
    {
        ConfigMap => "a mapping",
        ConfigList => "a list",
        ConfigScalar { IsNull: true } => "null",
        ConfigScalar s => $"'{s.Value}'",
        _ => "a value",
    };

    private static string Describe(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(string)) return "a string";
        if (t == typeof(bool)) return "true or false";
        if (t == typeof(int) || t == typeof(long)) return "an integer";
        if (t == typeof(double) || t == typeof(float)) return "a number";
        if (ElementTypeOfList(t) is not null || t == typeof(ConfigList)) return "a list";
        if (t == typeof(ConfigMap)) return "a mapping";
        return "a value";
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
