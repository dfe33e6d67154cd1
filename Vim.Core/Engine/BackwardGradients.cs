using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// Deterministic disposal around the backward of our TorchSharp autograd functions. TorchSharp wraps each incoming
/// gradient in a new managed tensor that nothing disposes, and when a backward returns it copies the returned gradients
/// into libtorch, whose graph then holds its own references, leaving the returned wrappers alive as well. On the CPU the
/// autograd engine calls backward on the thread that started it, inside the training step's dispose scope: wrappers kept
/// there hold their gradients until the step ends, every function's at once (for Vim-Ti at 1024², the scan's and the
/// conv's gradients, about 50 MiB per block, instead of one block's worth).
/// </summary>
/// <remarks>
/// A backward opens its scope with <see cref="Begin"/>, which first disposes what earlier backwards on this thread
/// returned: libtorch copied those when they returned, and callbacks on one thread never overlap (a backward that runs
/// autograd itself, as activation checkpointing does, sees its nested callbacks return before it does). It returns through
/// <see cref="Return"/>, which moves the gradients out of that scope, records them for the next <see cref="Begin"/>, and
/// disposes the incoming gradients it no longer reads. Whatever is left (the last backward of a pass) goes with the
/// enclosing dispose scope or the thread's next backward, whichever comes first.
/// </remarks>
public static class BackwardGradients
{
    [ThreadStatic] private static List<Tensor>? returnedEarlier;

    /// <summary>Disposes the gradients earlier backwards on this thread returned, and opens this backward's scope.</summary>
    public static DisposeScope Begin()
    {
        if (returnedEarlier is { Count: > 0 } earlier)
        {
            foreach (var gradient in earlier) gradient.Dispose();
            earlier.Clear();
        }
        return NewDisposeScope();
    }

    /// <summary>
    /// The list a backward returns (one entry per forward argument, null where there is no gradient), its tensors moved
    /// out of the <see cref="Begin"/> scope and recorded for disposal; <paramref name="incoming"/>, the gradients the
    /// backward received, are disposed unless returned themselves.
    /// </summary>
    public static List<Tensor> Return(IEnumerable<Tensor?> gradients, params Tensor?[] incoming)
    {
        var returned = gradients.ToList();
        returnedEarlier ??= [];
        foreach (var gradient in returned)
        {
            if (gradient is null || gradient.IsInvalid) continue;
            gradient.MoveToOuterDisposeScope();
            returnedEarlier.Add(gradient);
        }
        foreach (var tensor in incoming)
            if (tensor is not null && !returned.Any(g => ReferenceEquals(g, tensor))) tensor.Dispose();
        return returned!;
    }

    /// <summary>
    /// For a backward that differentiates a recomputation of its forward: the gradients of <paramref name="outputs"/>, given
    /// theirs (<paramref name="outputGradients"/>), with respect to each target, written into <paramref name="gradients"/> at
    /// the target's slot (its argument's position). A target the outputs do not depend on keeps its slot as it was.
    /// </summary>
    public static void DifferentiateInto(Tensor?[] gradients, IList<Tensor> outputs, IList<Tensor> outputGradients,
        IReadOnlyList<(Tensor Tensor, int Slot)> targets)
    {
        if (targets.Count == 0 || outputs.Count == 0) return;
        var found = torch.autograd.grad(outputs, targets.Select(t => t.Tensor).ToList(), outputGradients, allow_unused: true);
        for (int k = 0; k < targets.Count; k++)
            if (found[k] is { IsInvalid: false } gradient) gradients[targets[k].Slot] = gradient;
    }
}
