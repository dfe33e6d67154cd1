using System.Globalization;

namespace Vim.Core.Checkpoints;

/// <summary>Visits the leaves of an unpickled tree in file order, naming each by its dotted path.</summary>
internal static class CheckpointTree
{
    /// <summary>
    /// Calls <paramref name="onLeaf"/> for every leaf and stores what it returns in place of the leaf,
    /// so placeholders can be swapped for loaded tensors. A container shared by two parents is visited
    /// under both names (as tied tensors are); a container inside itself (a cycle) is not entered again.
    /// </summary>
    public static object? Visit(object? root, Func<string, object?, object?> onLeaf) =>
        Visit(root, "", onLeaf, new HashSet<object>(ReferenceEqualityComparer.Instance));

    private static object? Visit(object? node, string name, Func<string, object?, object?> onLeaf, HashSet<object> seen)
    {
        switch (node)
        {
            case PickleDict or List<object?> or object?[] or PickledObject when !seen.Add(node):
                return node; // a cycle: the container is already open further up this path
            case PickleDict dict:
                for (var i = 0; i < dict.Count; i++)
                    dict.SetValueAt(i, Visit(dict.Values[i], Join(name, KeyName(dict.Keys[i])), onLeaf, seen));
                seen.Remove(dict);
                return dict;
            case List<object?> list:
                for (var i = 0; i < list.Count; i++)
                    list[i] = Visit(list[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), onLeaf, seen);
                seen.Remove(list);
                return list;
            case object?[] tuple:
                for (var i = 0; i < tuple.Length; i++)
                    tuple[i] = Visit(tuple[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), onLeaf, seen);
                seen.Remove(tuple);
                return tuple;
            case PickledObject obj:
                var hasChildren = false;
                switch (obj.State)
                {
                    case PickleDict state:
                        obj.State = Visit(state, name, onLeaf, seen);
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
                    if (obj.RawArgs[i] is PendingTensor or TorchSharp.torch.Tensor)
                        obj.RawArgs[i] = onLeaf(Join(name, $"args.{i}"), obj.RawArgs[i]);
                seen.Remove(obj);
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
