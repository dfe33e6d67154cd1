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
        // Sizes through dim()/size(i): Tensor.shape allocates an array per call (≈ 1.2 µs each), and
        // checking the eight arguments that way cost ≈ 20 µs per call, ≈ 1% of a Vim-Ti scan.
        if (u.dim() != 3)
            throw new ArgumentException($"SelectiveScan: u must have shape (batch, channels, L), got {Show(u.shape)}", nameof(u));
        if (A.dim() != 2 || A.size(0) != u.size(1))
            throw new ArgumentException(
                $"SelectiveScan: A must have shape (channels={u.size(1)}, N), got {Show(A.shape)}", nameof(A));
        var shape = new SelectiveScanShape(u.size(0), u.size(1), u.size(2), A.size(1));
        if (shape.Batch < 1 || shape.Channels < 1 || shape.Length < 1 || shape.State < 1)
            throw new ArgumentException(
                $"SelectiveScan: batch, channels, L (from u) and N (from A) must be positive, got u {Show(u.shape)}, A {Show(A.shape)}", nameof(u));

        ExpectSequence(delta, nameof(delta), shape, "channels", shape.Channels);
        ExpectSequence(B, nameof(B), shape, "N", shape.State);
        ExpectSequence(C, nameof(C), shape, "N", shape.State);
        if (D is not null) ExpectPerChannel(D, nameof(D), shape);
        if (z is not null) ExpectSequence(z, nameof(z), shape, "channels", shape.Channels);
        if (deltaBias is not null) ExpectPerChannel(deltaBias, nameof(deltaBias), shape);

        var device = u.device_type;
        int deviceIndex = u.device_index;
        foreach (var (t, name) in Named(u, delta, A, B, C, D, z, deltaBias))
        {
            if (!t.is_floating_point())
                throw new ArgumentException($"SelectiveScan: {name} must be a floating-point tensor, got {t.dtype}", name);
            if (t.device_type != device || t.device_index != deviceIndex)
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

    /// <summary>A (batch, rows, L) argument: channels rows for delta and z, N for B and C.</summary>
    private static void ExpectSequence(Tensor t, string name, SelectiveScanShape s, string rowName, long rows)
    {
        if (t.dim() == 3 && t.size(0) == s.Batch && t.size(1) == rows && t.size(2) == s.Length) return;
        throw new ArgumentException(
            $"SelectiveScan: {name} must have shape (batch={s.Batch}, {rowName}={rows}, L={s.Length}), got {Show(t.shape)}", name);
    }

    private static void ExpectPerChannel(Tensor t, string name, SelectiveScanShape s)
    {
        if (t.dim() == 1 && t.size(0) == s.Channels) return;
        throw new ArgumentException($"SelectiveScan: {name} must have shape (channels={s.Channels}), got {Show(t.shape)}", name);
    }

    internal static string Show(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
