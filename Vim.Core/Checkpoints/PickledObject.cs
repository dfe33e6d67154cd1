namespace Vim.Core.Checkpoints;

/// <summary>
/// An instance of a class the checkpoint reader does not interpret (e.g. <c>argparse.Namespace</c>),
/// kept as inert data: the constructor arguments, the BUILD state and any items appended to it.
/// The reader never runs the class; this is what makes untrusted checkpoints safe to open.
/// </summary>
public sealed class PickledObject(string module, string name, object?[] args)
{
    public string Module { get; } = module;
    public string Name { get; } = name;
    public IReadOnlyList<object?> Args => RawArgs;

    /// <summary>The arguments, writable so loaded tensors can replace their placeholders in place.</summary>
    internal object?[] RawArgs { get; } = args;

    /// <summary>The argument of BUILD (usually a dict of attributes), or null when there was none.</summary>
    public object? State { get; internal set; }

    /// <summary>Items added by APPEND(S)/ADDITEMS (list or set subclasses).</summary>
    public List<object?> ListItems { get; } = [];

    /// <summary>Items added by SETITEM(S) (dict subclasses).</summary>
    public PickleDict DictItems { get; } = new(isOrderedDict: false);

    public string QualifiedName => $"{Module}.{Name}";

    /// <summary>An attribute from a dict-shaped BUILD state, as <c>vars(obj)[name]</c> would give.</summary>
    public bool TryGetAttribute(string attribute, out object? value)
    {
        value = null;
        return State is PickleDict dict && dict.TryGetValue(attribute, out value);
    }

    public override string ToString() => $"<{QualifiedName}>";
}
