using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// State-dict entries in PyTorch's order: a module's own parameters, then its own buffers, then each
/// child in registration order, recursively. (TorchSharp's state_dict lists every parameter before any
/// buffer, which differs from PyTorch as soon as a submodule owns buffers, e.g. RoPE or BatchNorm.)
/// </summary>
public static class StateDictOrder
{
    public static IEnumerable<(string Key, Tensor Value)> Entries(nn.Module module, string prefix = "")
    {
        foreach (var (name, parameter) in module.named_parameters(recurse: false))
            yield return (prefix + name, parameter);
        foreach (var (name, buffer) in module.named_buffers(recurse: false))
            yield return (prefix + name, buffer);
        foreach (var (name, child) in module.named_children())
            foreach (var entry in Entries(child, prefix + name + "."))
                yield return entry;
    }

    /// <summary>Total number of parameter elements (buffers excluded).</summary>
    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());
}
