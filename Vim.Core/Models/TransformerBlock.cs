using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>Pre-norm ViT block: x + DropPath(attn(norm1(x))), then x + DropPath(mlp(norm2(x))).</summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly LayerNorm norm1;
    private readonly SelfAttention attn;
    private readonly DropPath drop_path;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
#pragma warning restore IDE1006

    public TransformerBlock(long dim, int heads, double mlpRatio, double eps, double dropPathRate, AttentionKind kind) : base(nameof(TransformerBlock))
    {
        norm1 = nn.LayerNorm(dim, eps);
        attn = new SelfAttention(dim, heads, kind);
        drop_path = new DropPath(dropPathRate);
        norm2 = nn.LayerNorm(dim, eps);
        mlp = new Mlp(dim, (long)(dim * mlpRatio));
        RegisterComponents();
    }

    public SelfAttention Attention => attn;
    internal IEnumerable<Linear> Linears => attn.Linears.Concat(mlp.Linears);

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var afterAttention = x + drop_path.forward(attn.forward(norm1.forward(x)));
        return (afterAttention + drop_path.forward(mlp.forward(norm2.forward(afterAttention)))).MoveToOuterDisposeScope();
    }
}
