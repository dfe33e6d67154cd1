using System.Globalization;
using System.Text;

namespace Vim.Core.Checkpoints;

/// <summary>Visits the leaves of an unpickled tree in file order, naming each by its dotted path.</summary>
internal static class CheckpointTree
{
    /// <summary>
    /// How deep containers (and tuple keys) may nest. Real checkpoints nest a few levels; the walks below recurse once
    /// per level, and a stack overflow (a pickle of ]]]]... is enough) kills the process where no handler can catch it.
    /// </summary>
    public const int MaxDepth = 1000;

    /// <summary>Longest name a tuple key may print as; real keys are a few words, and an exponentially shared tuple prints endlessly.</summary>
    private const int MaxKeyNameLength = 1 << 16;

    /// <summary>
    /// The steps <see cref="Visit"/> may take for a pickle of this many bytes. A tree without shared containers has
    /// fewer nodes than its pickle has bytes; sharing multiplies the paths (a tuple of itself twice, 64 times over, is
    /// 2^64 paths in 400 bytes), which torch.load never walks but naming every leaf does.
    /// </summary>
    public static long StepBudget(long pickleLength) => Math.Max(1_000_000, 8 * pickleLength);

    /// <summary>
    /// Calls <paramref name="onLeaf"/> for every leaf and stores what it returns in place of the leaf,
    /// so placeholders can be swapped for loaded tensors. A container shared by two parents is visited
    /// under both names (as tied tensors are); a container inside itself (a cycle) is not entered again.
    /// </summary>
    /// <param name="maxSteps">Refuse the tree once the walk has taken this many steps (see <see cref="StepBudget"/>).</param>
    /// <param name="source">How errors name the pickle, e.g. "x.pth: entry 'archive/data.pkl'".</param>
    public static object? Visit(object? root, Func<string, object?, object?> onLeaf, long maxSteps, string source) =>
        new Walk(onLeaf, maxSteps, source).Visit(root, "", 0);

    private sealed class Walk(Func<string, object?, object?> onLeaf, long maxSteps, string source)
    {
        private readonly HashSet<object> _open = new(ReferenceEqualityComparer.Instance);
        private long _steps;

        public object? Visit(object? node, string name, int depth)
        {
            // Each visit costs a step, plus one per 8 characters of its name: a long key shared down a deep chain
            // makes names quadratically long without adding nodes.
            _steps += 1 + name.Length / 8;
            if (_steps > maxSteps)
                throw new VimException($"{source}: the object tree shares containers so often that naming every path takes more than {maxSteps} steps "
                    + $"(stopped at '{Shorten(name)}'): each leaf is named by every path to it, and this tree has too many paths for that");
            if (node is PickleDict or List<object?> or object?[] or PickledObject)
            {
                if (depth >= MaxDepth)
                    throw new VimException($"{source}: containers nest more than {MaxDepth} levels deep (at '{Shorten(name)}')");
                if (!_open.Add(node))
                    return node; // a cycle: the container is already open further up this path
                try
                {
                    return VisitContainer(node, name, depth + 1);
                }
                finally
                {
                    _open.Remove(node);
                }
            }
            return onLeaf(name, node);
        }

        private object? VisitContainer(object node, string name, int depth)
        {
            switch (node)
            {
                case PickleDict dict:
                    for (var i = 0; i < dict.Count; i++)
                        dict.SetValueAt(i, Visit(dict.Values[i], Join(name, KeyNameIn(dict.Keys[i], name)), depth));
                    return dict;
                case List<object?> list:
                    for (var i = 0; i < list.Count; i++)
                        list[i] = Visit(list[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), depth);
                    return list;
                case object?[] tuple:
                    for (var i = 0; i < tuple.Length; i++)
                        tuple[i] = Visit(tuple[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), depth);
                    return tuple;
                default:
                    return VisitObject((PickledObject)node, name, depth);
            }
        }

        private object? VisitObject(PickledObject obj, string name, int depth)
        {
            var hasChildren = false;
            switch (obj.State)
            {
                case PickleDict state:
                    obj.State = Visit(state, name, depth);
                    hasChildren |= state.Count > 0;
                    break;
                case not null:
                    obj.State = Visit(obj.State, Join(name, "state"), depth);
                    hasChildren = true;
                    break;
            }
            if (obj.DictItems.Count > 0)
            {
                Visit(obj.DictItems, name, depth);
                hasChildren = true;
            }
            hasChildren |= obj.ListItems.Count > 0;
            for (var i = 0; i < obj.ListItems.Count; i++)
                obj.ListItems[i] = Visit(obj.ListItems[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), depth);
            // Constructor arguments are opaque (dtype descriptors, raw bytes...); only tensors among
            // them are loaded, so no placeholder survives.
            for (var i = 0; i < obj.RawArgs.Length; i++)
                if (obj.RawArgs[i] is PendingTensor or TorchSharp.torch.Tensor)
                    obj.RawArgs[i] = onLeaf(Join(name, $"args.{i}"), obj.RawArgs[i]);
            return hasChildren ? obj : onLeaf(name, obj);
        }

        private string KeyNameIn(object key, string parent) =>
            TryKeyName(key, out var text)
                ? text
                : throw new VimException($"{source}: a key {(parent.Length == 0 ? "at the top level" : $"of '{Shorten(parent)}'")} is a tuple nested more than {MaxDepth} levels deep or longer than {MaxKeyNameLength} characters when printed");
    }

    private static string Shorten(string name) => name.Length <= 200 ? name : name[..200] + "...";

    private static string Join(string prefix, string key) => prefix.Length == 0 ? key : $"{prefix}.{key}";

    /// <summary>How a dict key appears in a dotted name (as Python's str() would print it).</summary>
    public static string KeyName(object key) =>
        TryKeyName(key, out var text)
            ? text
            : throw new VimException($"dict key is a tuple nested more than {MaxDepth} levels deep or longer than {MaxKeyNameLength} characters when printed");

    private static bool TryKeyName(object key, out string text)
    {
        if (key is not object?[])
        {
            text = ScalarKeyName(key);
            return true;
        }
        var builder = new StringBuilder();
        var fits = AppendKeyName(builder, key, 0);
        text = fits ? builder.ToString() : "";
        return fits;
    }

    private static bool AppendKeyName(StringBuilder text, object? key, int depth)
    {
        if (key is not object?[] tuple)
        {
            text.Append(key is null ? "None" : ScalarKeyName(key));
            return text.Length <= MaxKeyNameLength;
        }
        if (depth >= MaxDepth)
            return false;
        text.Append('(');
        for (var i = 0; i < tuple.Length; i++)
        {
            if (i > 0)
                text.Append(", ");
            if (!AppendKeyName(text, tuple[i], depth + 1))
                return false;
        }
        text.Append(')');
        return text.Length <= MaxKeyNameLength;
    }

    private static string ScalarKeyName(object key) => key switch
    {
        string s => s,
        bool b => b ? "True" : "False",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => key.ToString() ?? "",
    };
}
