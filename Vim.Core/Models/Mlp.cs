using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>Transformer feed-forward: fc1 → GELU (exact) → fc2.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly Linear fc1;
    private readonly GELU act;
    private readonly Linear fc2;
#pragma warning restore IDE1006

    public Mlp(long dim, long hidden) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(dim, hidden);
        act = nn.GELU();
        fc2 = nn.Linear(hidden, dim);
        RegisterComponents();
    }

    internal IEnumerable<Linear> Linears => new[] { fc1, fc2 };

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return fc2.call(act.call(fc1.call(x))).MoveToOuterDisposeScope();
    }
}
