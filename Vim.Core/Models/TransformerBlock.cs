using Vim.Core.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Pre-norm ViT block: x + DropPath(attn(norm1(x))), then x + DropPath(mlp(norm2(x))). With a window
/// size (ViTDet) attention runs inside non-overlapping windows of the token grid: the normed grid is
/// zero-padded at the bottom and right to a multiple of the window (the padding tokens take part in
/// attention as ViTDet's do), split into windows, attended, merged and cropped.
/// </summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly LayerNorm norm1;
    private readonly SelfAttention attn;
    private readonly DropPath drop_path;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
#pragma warning restore IDE1006

    public TransformerBlock(long dim, int heads, double mlpRatio, double eps, double dropPathRate, AttentionKind kind, int windowSize = 0)
        : base(nameof(TransformerBlock))
    {
        if (windowSize < 0) throw new VimException($"TransformerBlock: window size must be 0 (global) or positive, got {windowSize}.");
        WindowSize = windowSize;
        norm1 = nn.LayerNorm(dim, eps);
        attn = new SelfAttention(dim, heads, kind);
        drop_path = new DropPath(dropPathRate);
        norm2 = nn.LayerNorm(dim, eps);
        mlp = new Mlp(dim, (long)(dim * mlpRatio));
        RegisterComponents();
    }

    /// <summary>Side of the attention windows in tokens; 0 = global attention.</summary>
    public int WindowSize { get; }

    public SelfAttention Attention => attn;
    internal IEnumerable<Linear> Linears => attn.Linears.Concat(mlp.Linears);

    /// <summary>Global attention over the whole sequence (B, L, D); a windowed block needs the grid (<see cref="Forward"/>).</summary>
    public override Tensor forward(Tensor x)
    {
        if (WindowSize > 0) throw new VimException("TransformerBlock: a window-attention block needs the token grid; call Forward(x, rows, cols).");
        return Forward(x, 0, 0);
    }

    /// <summary>The block on (B, rows·cols, D) tokens in row-major grid order (rows and cols are read only by window attention).</summary>
    public Tensor Forward(Tensor x, int rows, int cols)
    {
        using var scope = NewDisposeScope();
        using var counted = FlopCounter.Within(this);
        var normed = norm1.call(x);
        var attended = WindowSize > 0 ? WindowAttention(normed, rows, cols) : attn.call(normed);
        var afterAttention = x + drop_path.call(attended);
        return (afterAttention + drop_path.call(mlp.call(norm2.call(afterAttention)))).MoveToOuterDisposeScope();
    }

    private Tensor WindowAttention(Tensor normed, int rows, int cols)
    {
        long batch = normed.shape[0], dim = normed.shape[2];
        if (normed.shape[1] != (long)rows * cols)
            throw new VimException($"TransformerBlock: {normed.shape[1]} tokens do not form the {rows}×{cols} grid window attention was given.");
        int w = WindowSize;
        int padRows = (w - rows % w) % w, padCols = (w - cols % w) % w;
        int paddedRows = rows + padRows, paddedCols = cols + padCols;
        var grid = normed.reshape(batch, rows, cols, dim);
        if (padRows > 0 || padCols > 0)
            grid = nn.functional.pad(grid, new long[] { 0, 0, 0, padCols, 0, padRows });
        var windows = grid.reshape(batch, paddedRows / w, w, paddedCols / w, w, dim).permute(0, 1, 3, 2, 4, 5).reshape(-1, (long)w * w, dim);
        var merged = attn.call(windows).reshape(batch, paddedRows / w, paddedCols / w, w, w, dim).permute(0, 1, 3, 2, 4, 5)
            .reshape(batch, paddedRows, paddedCols, dim);
        return merged.narrow(1, 0, rows).narrow(2, 0, cols).reshape(batch, (long)rows * cols, dim);
    }
}
