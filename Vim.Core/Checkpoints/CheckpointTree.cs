using System.Globalization;

namespace Vim.Core.Checkpoints;

/// <summary>Visits the leaves of an unpickled tree in file order, naming each by its dotted path.</summary>
internal static class CheckpointTree
{
    /// <summary>
    /// Calls <paramref name="onLeaf"/> for every leaf and stores what it returns in place of the leaf,
    /// so placeholders can be swapped for loaded tensors. A container reached twice (shared or cyclic
    /// references) is visited once, under the first name.
    /// </summary>
    public static object? Visit(object? root, Func<string, object?, object?> onLeaf) =>
        Visit(root, "", onLeaf, new HashSet<object>(ReferenceEqualityComparer.Instance));

    private static object? Visit(object? node, string name, Func<string, object?, object?> onLeaf, HashSet<object> seen)
    {
        switch (node)
        {
            case PickleDict dict:
                if (seen.Add(dict))
                    for (var i = 0; i < dict.Count; i++)
                        dict.SetValueAt(i, Visit(dict.Values[i], Join(name, KeyName(dict.Keys[i])), onLeaf, seen));
                return dict;
            case List<object?> list:
                if (seen.Add(list))
                    for (var i = 0; i < list.Count; i++)
                        list[i] = Visit(list[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), onLeaf, seen);
                return list;
            case object?[] tuple:
                if (tuple.Length > 0 && seen.Add(tuple))
                    for (var i = 0; i < tuple.Length; i++)
                        tuple[i] = Visit(tuple[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), onLeaf, seen);
                return tuple;
            case PickledObject obj:
                if (!seen.Add(obj))
                    return obj;
                var hasChildren = false;
                switch (obj.State)
                {
                    case PickleDict state:
                        Visit(state, name, onLeaf, seen);
                        hasChildren |= state.Count > 0;
                        break;
                    case not null:
                        obj.State = Visit(obj.State, Join(name, "state"), onLeaf, seen);
                        hasChildren = true;
                        break;
                }
                if (obj.DictItems.Count > 0)
                {
                    Visit(obj.DictItems, name, onLeaf, seen);
                    hasChildren = true;
                }
                hasChildren |= obj.ListItems.Count > 0;
                for (var i = 0; i < obj.ListItems.Count; i++)
                    obj.ListItems[i] = Visit(obj.ListItems[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), onLeaf, seen);
                // Constructor arguments are opaque (dtype descriptors, raw bytes...); only tensors among
                // them are loaded, so no placeholder survives.
                for (var i = 0; i < obj.RawArgs.Length; i++)
                    if (obj.RawArgs[i] is PendingTensor)
                        obj.RawArgs[i] = onLeaf(Join(name, $"args.{i}"), obj.RawArgs[i]);
                return hasChildren ? obj : onLeaf(name, obj);
            default:
                return onLeaf(name, node);
        }
    }

    private static string Join(string prefix, string key) => prefix.Length == 0 ? key : $"{prefix}.{key}";

    /// <summary>How a dict key appears in a dotted name (as Python's str() would print it).</summary>
    public static string KeyName(object key) => key switch
    {
        string s => s,
        bool b => b ? "True" : "False",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        object?[] t => "(" + string.Join(", ", t.Select(x => x is null ? "None" : KeyName(x))) + ")",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => key.ToString() ?? "",
    };
}
