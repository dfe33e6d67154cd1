using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Stochastic depth per sample (timm 0.4.12 semantics): in training, each sample's whole branch is
/// zeroed with probability <see cref="Rate"/> and survivors are scaled by 1/(1−rate). Identity in
/// eval mode or when the rate is 0.
/// </summary>
public sealed class DropPath : nn.Module<Tensor, Tensor>
{
    public double Rate { get; }

    public DropPath(double rate) : base(nameof(DropPath))
    {
        if (rate < 0 || rate >= 1) throw new VimException($"DropPath rate must be in [0, 1), got {rate}.");
        Rate = rate;
    }

    public override Tensor forward(Tensor x)
    {
        if (Rate == 0 || !training) return x.alias();
        using var scope = NewDisposeScope();
        double keep = 1 - Rate;
        var maskShape = new long[x.dim()];
        Array.Fill(maskShape, 1L);
        maskShape[0] = x.shape[0];
        var mask = (rand(maskShape, dtype: x.dtype, device: x.device) + keep).floor_();
        return (x / keep * mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The official schedule: dpr = linspace(0, rate, depth); block i is built with
    /// DropPath(inter[i]) where inter = [0] + dpr, i.e. block i drops the output of block i−1 with
    /// rate dpr[i−1], and the final add drops the last block's output with the full rate.
    /// Returns the per-block rates (length depth) that each block applies to its incoming hidden state.
    /// </summary>
    public static double[] OfficialBlockRates(double rate, int depth)
    {
        var dpr = Linspace(rate, depth);
        var inter = new double[depth];
        for (int i = 1; i < depth; i++) inter[i] = dpr[i - 1];
        return inter;
    }

    /// <summary>Stochastic-depth rates linspace(0, rate, depth), as timm and DeiT build them.</summary>
    public static double[] Linspace(double rate, int depth)
    {
        var dpr = new double[depth];
        for (int i = 0; i < depth; i++) dpr[i] = depth == 1 ? 0 : rate * i / (depth - 1);
        return dpr;
    }
}
