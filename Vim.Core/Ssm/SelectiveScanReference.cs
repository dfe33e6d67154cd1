using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Ssm;

/// <summary>
/// The selective scan written with plain tensor ops, step by step as the official
/// selective_scan_ref: the oracle every faster backend is tested against. Differentiable through
/// ordinary autograd; slow (one small op chain per sequence step).
/// </summary>
/// <remarks>
/// Shapes: u, delta, z (batch, channels, L); A (channels, N); B, C (batch, N, L); D and deltaBias
/// (channels). Returns (batch, channels, L) in u's dtype.
/// out[l] = (Σ_n h[l,n]·C[n,l] + D·u[l]) · silu(z[l]), h[l] = exp(Δ[l]·A)·h[l−1] + Δ[l]·B[l]·u[l],
/// Δ = softplus(delta + deltaBias) when deltaSoftplus.
/// </remarks>
public static class SelectiveScanReference
{
    public static Tensor Forward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D = null, Tensor? z = null, Tensor? deltaBias = null, bool deltaSoftplus = false)
    {
        using var scope = NewDisposeScope();
        var inputType = u.dtype;
        var compute = inputType == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var uf = u.to_type(compute);
        var dt = delta.to_type(compute);
        if (deltaBias is not null) dt = dt + deltaBias.to_type(compute).unsqueeze(-1);
        if (deltaSoftplus) dt = nn.functional.softplus(dt, beta: 1, threshold: 20);
        var Af = A.to_type(compute);
        var Bf = B.to_type(compute);
        var Cf = C.to_type(compute);

        long batch = u.shape[0], channels = u.shape[1], length = u.shape[2], state = A.shape[1];
        var deltaA = exp(einsum("bdl,dn->bdln", dt, Af));
        var deltaBu = einsum("bdl,bnl,bdl->bdln", dt, Bf, uf);
        var h = zeros(new[] { batch, channels, state }, dtype: compute, device: u.device);
        var ys = new List<Tensor>((int)length);
        // unbind rather than select(2, l) per step: same values, but its backward stacks the step
        // gradients once instead of scattering each into a full-size zero tensor (O(L) vs O(L²)).
        var decays = deltaA.unbind(2);
        var inputs = deltaBu.unbind(2);
        var readouts = Cf.unbind(2);
        for (int l = 0; l < length; l++)
        {
            h = decays[l] * h + inputs[l];
            ys.Add(einsum("bdn,bn->bd", h, readouts[l]));
        }
        var y = stack(ys, dim: 2);
        if (D is not null) y = y + uf * D.to_type(compute).unsqueeze(-1);
        if (z is not null) y = y * nn.functional.silu(z.to_type(compute));
        return y.to_type(inputType).MoveToOuterDisposeScope();
    }
}
