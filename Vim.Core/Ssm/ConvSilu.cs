using Vim.Core.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Ssm;

/// <summary>
/// The depthwise conv1d + bias + SiLU that turns x into the scan input u in the Mamba mixer, causal
/// (step t sees t−k+1..t, the forward branch) or anti-causal (t..t+k−1 with the taps reversed: the
/// causal conv of the time-flipped sequence, flipped back, i.e. Vim's backward branch in time order).
/// Float32 CPU tensors run one fused native pass (forward and backward); anything else runs the
/// equivalent TorchSharp ops.
/// </summary>
/// <remarks>x (batch, channels, L); weight (channels, 1, k) as nn.Conv1d stores it; bias (channels) or
/// null. Returns (batch, channels, L), contiguous.</remarks>
public static class ConvSilu
{
    /// <summary>Most taps the native kernel supports (vimdense_scan::kMaxConvWidth).</summary>
    private const long MaxNativeWidth = 16;

    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias, bool reverse)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        if (x.dim() != 3)
            throw new ArgumentException($"ConvSilu: x must have shape (batch, channels, L), got {SelectiveScanShape.Show(x.shape)}", nameof(x));
        long channels = x.shape[1], length = x.shape[2];
        if (weight.dim() != 3 || weight.shape[0] != channels || weight.shape[1] != 1 || weight.shape[2] < 1)
            throw new ArgumentException(
                $"ConvSilu: weight must have shape (channels={channels}, 1, k), got {SelectiveScanShape.Show(weight.shape)}", nameof(weight));
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != channels))
            throw new ArgumentException($"ConvSilu: bias must have shape (channels={channels}), got {SelectiveScanShape.Show(bias.shape)}", nameof(bias));
        long width = weight.shape[2];
        CountFlops(x, weight);

        bool native = x.device.type == DeviceType.CPU && width <= MaxNativeWidth &&
            x.dtype == ScalarType.Float32 && weight.dtype == ScalarType.Float32 &&
            (bias is null || bias.dtype == ScalarType.Float32) && x.shape[0] > 0 && channels > 0 && length > 0;
        if (!native) return WithTensorOps(x, weight, bias, reverse);

        using var scope = NewDisposeScope();
        // Rows must be contiguous; batch elements may be further apart (x is a channel slice of in_proj's output).
        var xr = x.stride(2) == 1 && x.stride(1) == length && x.stride(0) >= channels * length ? x.alias() : x.contiguous();
        var w2 = weight.view(channels, width);
        bool needsGraph = is_grad_enabled() && (x.requires_grad || weight.requires_grad || (bias?.requires_grad ?? false));
        var output = needsGraph
            ? ConvSiluFunction.apply(xr, SelectiveScanKernels.Prepare(w2)!, SelectiveScanKernels.Prepare(bias)!, reverse)
            : ConvSiluFunction.Forward(xr, SelectiveScanKernels.Prepare(w2)!, SelectiveScanKernels.Prepare(bias), reverse);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>True when <see cref="ApplyInto"/> can run these tensors (the native kernel's conditions).</summary>
    internal static bool CanApplyInto(ScalarType xType, DeviceType device, Tensor weight, Tensor? bias) =>
        device == DeviceType.CPU && weight.dim() == 3 && weight.shape[2] <= MaxNativeWidth &&
        xType == ScalarType.Float32 && weight.dtype == ScalarType.Float32 && (bias is null || bias.dtype == ScalarType.Float32);

    /// <summary>
    /// Inference form of <see cref="Apply"/> (no autograd): writes the result into
    /// <paramref name="output"/>, a contiguous float32 (batch, channels, L) tensor, instead of allocating it.
    /// </summary>
    internal static void ApplyInto(Tensor x, Tensor weight, Tensor? bias, bool reverse, Tensor output)
    {
        if (x.dim() != 3 || !CanApplyInto(x.dtype, x.device.type, weight, bias))
            throw new ArgumentException("ConvSilu.ApplyInto needs float32 CPU tensors and at most 16 taps", nameof(x));
        if (!output.is_contiguous() || output.dtype != ScalarType.Float32 || !output.shape.SequenceEqual(x.shape))
            throw new ArgumentException($"ConvSilu.ApplyInto: output must be contiguous float32 {SelectiveScanShape.Show(x.shape)}, got {output.dtype} {SelectiveScanShape.Show(output.shape)}", nameof(output));
        CountFlops(x, weight);
        using var scope = NewDisposeScope();
        long channels = x.shape[1], length = x.shape[2], width = weight.shape[2];
        var xr = x.stride(2) == 1 && x.stride(1) == length && x.stride(0) >= channels * length ? x.alias() : x.contiguous();
        ConvSiluFunction.Forward(xr, SelectiveScanKernels.Prepare(weight.view(channels, width))!, SelectiveScanKernels.Prepare(bias), reverse, output);
    }

    /// <summary>Reports the depthwise convolution to an active <see cref="FlopCounter"/> (the SiLU is an activation: 0).</summary>
    private static void CountFlops(Tensor x, Tensor weight) =>
        FlopCounter.Add("conv", FlopFormulas.Convolution(x.shape, weight.shape, x.shape, transposed: false));

    /// <summary>The definition with TorchSharp ops: conv1d padded k−1 on both sides, keeping the first L
    /// outputs (causal) or, with the kernel reversed, the last L (anti-causal).</summary>
    internal static Tensor WithTensorOps(Tensor x, Tensor weight, Tensor? bias, bool reverse)
    {
        using var scope = NewDisposeScope();
        long length = x.shape[2], width = weight.shape[2];
        var pre = nn.functional.conv1d(x, reverse ? weight.flip(-1) : weight, bias, padding: width - 1, groups: x.shape[1])
            .narrow(2, reverse ? width - 1 : 0, length);
        return nn.functional.silu(pre).contiguous().MoveToOuterDisposeScope();
    }
}
