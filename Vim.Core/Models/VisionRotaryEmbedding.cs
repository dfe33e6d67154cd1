using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// 2-D rotary position embedding with EVA's VisionRotaryEmbeddingFast semantics, built for a token
/// grid (rows × cols) and a model width D: frequencies f_k = 1/10000^(2k/(D/2)) for k &lt; D/4, each
/// repeated for an interleaved pair; positions t_i = i·pretrainGrid/gridSize per axis; a token's
/// angle vector is [row angles (D/2) | column angles (D/2)]. Rotation: x·cos + rotate_half(x)·sin with
/// rotate_half mapping each pair (a, b) → (−b, a). Buffers freqs_cos/freqs_sin have shape (rows·cols, D).
/// </summary>
public sealed class VisionRotaryEmbedding : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly Tensor freqs_cos;
    private readonly Tensor freqs_sin;
#pragma warning restore IDE1006

    public int Rows { get; }
    public int Cols { get; }
    public long Dim { get; }
    public int PretrainGrid { get; }

    public VisionRotaryEmbedding(long dim, int rows, int cols, int pretrainGrid = 14, double theta = 10000) : base(nameof(VisionRotaryEmbedding))
    {
        if (dim % 4 != 0) throw new VimException($"2-D RoPE needs a width divisible by 4, got {dim}.");
        Rows = rows;
        Cols = cols;
        Dim = dim;
        PretrainGrid = pretrainGrid;
        using (var scope = NewDisposeScope())
        {
            long half = dim / 2;
            var freqs = pow(theta, -arange(0, half, 2, dtype: ScalarType.Float64) / half);      // (D/4)
            Tensor AxisAngles(int n)
            {
                var t = arange(n, dtype: ScalarType.Float64) / n * pretrainGrid;
                return outer(t, freqs).repeat_interleave(2, dim: 1);                              // (n, D/2)
            }
            var rowAngles = AxisAngles(rows).unsqueeze(1).expand(rows, cols, half);
            var colAngles = AxisAngles(cols).unsqueeze(0).expand(rows, cols, half);
            var angles = cat(new[] { rowAngles, colAngles }, 2).reshape(rows * cols, dim);
            freqs_cos = angles.cos().to_type(ScalarType.Float32).DetachFromDisposeScope();
            freqs_sin = angles.sin().to_type(ScalarType.Float32).DetachFromDisposeScope();
        }
        RegisterComponents();
    }

    /// <summary>Pair rotation (a, b) → (−b, a) over the last dimension.</summary>
    public static Tensor RotateHalf(Tensor x)
    {
        using var scope = NewDisposeScope();
        var pairs = x.unflatten(x.dim() - 1, new long[] { x.shape[^1] / 2, 2 });
        var a = pairs.select(-1, 0);
        var b = pairs.select(-1, 1);
        return stack(new[] { -b, a }, -1).flatten(-2).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Rotates a (B, rows·cols, D) sequence of patch tokens. Half-precision tokens (autocast) are rotated in float32 and
    /// come back in float32, as the official float32 tables promote them: the rotated residual stream stays float32.
    /// </summary>
    public override Tensor forward(Tensor patches)
    {
        if (patches.dim() != 3 || patches.shape[1] != Rows * Cols || patches.shape[2] != Dim)
            throw new VimException($"RoPE built for {Rows}×{Cols} tokens of width {Dim} got [{string.Join(", ", patches.shape)}].");
        using var scope = NewDisposeScope();
        var tokens = Autocast.WidenHalf(patches);
        var cosT = freqs_cos.to(tokens.device).to_type(tokens.dtype);
        var sinT = freqs_sin.to(tokens.device).to_type(tokens.dtype);
        return (tokens * cosT + RotateHalf(tokens) * sinT).MoveToOuterDisposeScope();
    }
}
