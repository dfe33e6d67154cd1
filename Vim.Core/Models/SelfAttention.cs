using Vim.Core.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>timm's multi-head self-attention: fused qkv projection (with bias), heads, output projection.</summary>
public sealed class SelfAttention : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly Linear qkv;
    private readonly Linear proj;
#pragma warning restore IDE1006

    public int Heads { get; }
    public AttentionKind Kind { get; set; }

    public SelfAttention(long dim, int heads, AttentionKind kind) : base(nameof(SelfAttention))
    {
        Heads = heads;
        Kind = kind;
        qkv = nn.Linear(dim, 3 * dim);
        proj = nn.Linear(dim, dim);
        RegisterComponents();
    }

    internal IEnumerable<Linear> Linears => new[] { qkv, proj };

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], length = x.shape[1], dim = x.shape[2], headDim = dim / Heads;
        var qkvHeads = qkv.call(x).reshape(batch, length, 3, Heads, headDim).permute(2, 0, 3, 1, 4);
        var q = qkvHeads[0];
        var k = qkvHeads[1];
        var v = qkvHeads[2];
        FlopCounter.Add("attention", FlopFormulas.Attention(batch, Heads, length, length, headDim, headDim));
        Tensor attended;
        if (Kind == AttentionKind.ScaledDotProduct)
        {
            attended = nn.functional.scaled_dot_product_attention(q, k, v);
        }
        else
        {
            var weights = (q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(headDim))).softmax(-1);
            attended = weights.matmul(v);
        }
        return proj.call(attended.transpose(1, 2).reshape(batch, length, dim)).MoveToOuterDisposeScope();
    }
}
