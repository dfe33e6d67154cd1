using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>Random selective-scan arguments in the ranges the Mamba mixer produces.</summary>
internal sealed record SelectiveScanTestInputs(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
    Tensor? D, Tensor? z, Tensor? deltaBias, bool Softplus)
{
    public static SelectiveScanTestInputs Create(long batch, long channels, long length, long state,
        bool withD, bool withZ, bool withBias, bool softplus, ScalarType dtype, int seed, bool requiresGrad = false)
    {
        var gen = new Generator((ulong)seed);
        Tensor R(params long[] shape) => randn(shape, dtype: dtype, generator: gen);
        var u = R(batch, channels, length);
        // softplus input around -1.5 (Δ ≈ 0.2), or a direct positive step
        var delta = softplus ? R(batch, channels, length) - 1.5 : rand(new[] { batch, channels, length }, dtype: dtype, generator: gen) * 0.3 + 0.01;
        // S4D-real spread: A[:, n] ≈ -(n+1), jittered
        var A = -(arange(1, state + 1, dtype: dtype).unsqueeze(0) * (rand(new[] { channels, state }, dtype: dtype, generator: gen) + 0.5));
        var B = R(batch, state, length);
        var C = R(batch, state, length);
        var D = withD ? R(channels) : null;
        var z = withZ ? R(batch, channels, length) * 2 : null;
        var bias = withBias ? R(channels) * 0.5 : null;
        var all = new[] { u, delta, A, B, C, D, z, bias };
        if (requiresGrad)
            foreach (var t in all)
                t?.requires_grad_(true);
        return new SelectiveScanTestInputs(u, delta, A, B, C, D, z, bias, softplus);
    }

    public IEnumerable<(string Name, Tensor Tensor)> Present()
    {
        yield return ("u", u);
        yield return ("delta", delta);
        yield return ("A", A);
        yield return ("B", B);
        yield return ("C", C);
        if (D is not null) yield return ("D", D);
        if (z is not null) yield return ("z", z);
        if (deltaBias is not null) yield return ("deltaBias", deltaBias);
    }

    /// <summary>Detached copies that require grad (fresh leaves for one backend's run).</summary>
    public SelectiveScanTestInputs Leaves()
    {
        Tensor? L(Tensor? t) => t?.detach().clone().requires_grad_(true);
        return new SelectiveScanTestInputs(L(u)!, L(delta)!, L(A)!, L(B)!, L(C)!, L(D), L(z), L(deltaBias), Softplus);
    }

    public static double RelativeError(Tensor actual, Tensor expected)
    {
        double den = expected.to_type(ScalarType.Float64).norm().item<double>();
        double num = (actual.to_type(ScalarType.Float64) - expected.to_type(ScalarType.Float64)).norm().item<double>();
        return den == 0 ? num : num / den;
    }
}
