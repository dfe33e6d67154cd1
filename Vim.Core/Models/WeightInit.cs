using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Seeded in-place initialisers (timm / PyTorch semantics) that draw every value from one explicit
/// generator, so a model built with the same seed is bit-identical and no global RNG state is used.
/// </summary>
public static class WeightInit
{
    /// <summary>U(low, high).</summary>
    public static void Uniform(Tensor target, double low, double high, Generator generator)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var values = rand(target.shape, dtype: ScalarType.Float64, generator: generator) * (high - low) + low;
        target.copy_(values);
    }

    /// <summary>PyTorch's default Linear/Conv weight init: kaiming_uniform(a = √5) = U(±1/√fan_in).</summary>
    public static void KaimingUniformSqrt5(Tensor weight, Generator generator)
    {
        double bound = 1.0 / Math.Sqrt(FanIn(weight));
        Uniform(weight, -bound, bound, generator);
    }

    /// <summary>PyTorch's default bias init for Linear/Conv: U(±1/√fan_in of the weight).</summary>
    public static void DefaultBias(Tensor bias, Tensor weight, Generator generator)
    {
        double bound = 1.0 / Math.Sqrt(FanIn(weight));
        Uniform(bias, -bound, bound, generator);
    }

    /// <summary>
    /// timm trunc_normal_(std, a, b) with absolute bounds a, b: inverse-CDF sampling of N(mean, std²)
    /// restricted to [a, b].
    /// </summary>
    public static void TruncatedNormal(Tensor target, double std, Generator generator, double mean = 0, double a = -2, double b = 2)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double lower = NormalCdf((a - mean) / std), upper = NormalCdf((b - mean) / std);
        var u = rand(target.shape, dtype: ScalarType.Float64, generator: generator) * (upper - lower) + lower;
        var values = special.erfinv(u * 2 - 1) * (std * Math.Sqrt(2)) + mean;
        target.copy_(values.clamp(a, b));
    }

    /// <summary>timm lecun_normal_: truncated normal (±2σ) with variance 1/fan_in, corrected for the truncation.</summary>
    public static void LecunNormal(Tensor weight, Generator generator)
    {
        // 0.8796… is the std of a standard normal truncated to [−2, 2]; dividing by it restores variance 1/fan_in.
        double std = Math.Sqrt(1.0 / FanIn(weight)) / 0.87962566103423978;
        TruncatedNormal(weight, std, generator, 0, -2 * std, 2 * std);
    }

    public static void Fill(Tensor target, double value)
    {
        using var noGrad = no_grad();
        target.fill_(value);
    }

    public static long FanIn(Tensor weight)
    {
        if (weight.dim() < 2) throw new VimException($"Fan-in needs a weight with at least 2 dims, got [{string.Join(", ", weight.shape)}].");
        long receptive = 1;
        for (int d = 2; d < weight.dim(); d++) receptive *= weight.shape[d];
        return weight.shape[1] * receptive;
    }

    private static double NormalCdf(double x) => 0.5 * (1 + MathNet.Numerics.SpecialFunctions.Erf(x / Math.Sqrt(2)));
}
