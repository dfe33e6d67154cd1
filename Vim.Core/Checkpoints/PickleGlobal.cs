namespace Vim.Core.Checkpoints;

/// <summary>
/// A class or function named by a pickle GLOBAL opcode that was stored as a value rather than called
/// (for example a dtype such as <c>torch.float32</c>). Nothing is ever imported or executed.
/// </summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}
