using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Ssm;

/// <summary>
/// Problem sizes of one selective-scan call, derived from u and A and checked against every other
/// argument (shape, floating dtype, device) with errors that name the argument.
/// </summary>
public sealed record SelectiveScanShape(long Batch, long Channels, long Length, long State)
{
    public static SelectiveScanShape Validate(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D, Tensor? z, Tensor? deltaBias)
    {
        ArgumentNullException.ThrowIfNull(u);
        ArgumentNullException.ThrowIfNull(delta);
        ArgumentNullException.ThrowIfNull(A);
        ArgumentNullException.ThrowIfNull(B);
        ArgumentNullException.ThrowIfNull(C);
        if (u.dim() != 3)
            throw new ArgumentException($"SelectiveScan: u must have shape (batch, channels, L), got {Show(u.shape)}", nameof(u));
        if (A.dim() != 2 || A.shape[0] != u.shape[1])
            throw new ArgumentException(
                $"SelectiveScan: A must have shape (channels={u.shape[1]}, N), got {Show(A.shape)}", nameof(A));
        var shape = new SelectiveScanShape(u.shape[0], u.shape[1], u.shape[2], A.shape[1]);
        if (shape.Batch < 1 || shape.Channels < 1 || shape.Length < 1 || shape.State < 1)
            throw new ArgumentException(
                $"SelectiveScan: batch, channels, L (from u) and N (from A) must be positive, got u {Show(u.shape)}, A {Show(A.shape)}", nameof(u));

        string bdl = $"(batch={shape.Batch}, channels={shape.Channels}, L={shape.Length})";
        string bnl = $"(batch={shape.Batch}, N={shape.State}, L={shape.Length})";
        string d1 = $"(channels={shape.Channels})";
        ExpectShape(delta, nameof(delta), bdl, shape.Batch, shape.Channels, shape.Length);
        ExpectShape(B, nameof(B), bnl, shape.Batch, shape.State, shape.Length);
        ExpectShape(C, nameof(C), bnl, shape.Batch, shape.State, shape.Length);
        if (D is not null) ExpectShape(D, nameof(D), d1, shape.Channels);
        if (z is not null) ExpectShape(z, nameof(z), bdl, shape.Batch, shape.Channels, shape.Length);
        if (deltaBias is not null) ExpectShape(deltaBias, nameof(deltaBias), d1, shape.Channels);

        foreach (var (t, name) in Named(u, delta, A, B, C, D, z, deltaBias))
        {
            if (!t.is_floating_point())
                throw new ArgumentException($"SelectiveScan: {name} must be a floating-point tensor, got {t.dtype}", name);
            if (t.device.type != u.device.type || t.device.index != u.device.index)
                throw new ArgumentException($"SelectiveScan: {name} is on {t.device}, but u is on {u.device}; all arguments must be on one device", name);
        }
        return shape;
    }

    /// <summary>The given tensors with their parameter names, skipping absent optional ones.</summary>
    internal static IEnumerable<(Tensor Tensor, string Name)> Named(Tensor u, Tensor delta, Tensor A, Tensor B,
        Tensor C, Tensor? D, Tensor? z, Tensor? deltaBias)
    {
        yield return (u, nameof(u));
        yield return (delta, nameof(delta));
        yield return (A, nameof(A));
        yield return (B, nameof(B));
        yield return (C, nameof(C));
        if (D is not null) yield return (D, nameof(D));
        if (z is not null) yield return (z, nameof(z));
        if (deltaBias is not null) yield return (deltaBias, nameof(deltaBias));
    }

    private static void ExpectShape(Tensor t, string name, string expected, params long[] dims)
    {
        if (!t.shape.SequenceEqual(dims))
            throw new ArgumentException($"SelectiveScan: {name} must have shape {expected}, got {Show(t.shape)}", name);
    }

    internal static string Show(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
