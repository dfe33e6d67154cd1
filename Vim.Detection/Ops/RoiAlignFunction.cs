using TorchSharp;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using static TorchSharp.torch;
using Vim.Core.Native;

namespace Vim.Detection.Ops;

/// <summary>
/// The native RoIAlign as a TorchSharp autograd function. Arguments: features (N, C, H, W),
/// rois (K, 5), pooledH, pooledW, spatialScale, samplingRatio, aligned. Both tensors are contiguous,
/// of one dtype and device and validated by <see cref="RoiAlign"/>. Gradients flow to the features
/// only (as in torchvision: the box coordinates get none).
/// </summary>
internal sealed class RoiAlignFunction : torch.autograd.SingleTensorFunction<RoiAlignFunction>
{
    public override string Name => "VimDenseRoiAlign";

    private sealed record Settings(long Batch, long Channels, long Height, long Width, long PooledH, long PooledW,
        double SpatialScale, int SamplingRatio, bool Aligned);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        if (vars.Length != 7)
            throw new ArgumentException($"RoiAlignFunction expects 7 arguments, got {vars.Length}.");
        var features = (Tensor)vars[0];
        var rois = (Tensor)vars[1];
        var s = new Settings(features.shape[0], features.shape[1], features.shape[2], features.shape[3],
            (long)vars[2], (long)vars[3], (double)vars[4], (int)vars[5], (bool)vars[6]);
        ctx.save_for_backward(new List<Tensor> { rois });
        ctx.save_data("settings", s);
        return Forward(features, rois, s);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        // Backward may run on the autograd engine's thread, which the caller's dispose scope does not reach.
        using var scope = BackwardGradients.Begin();
        var rois = ctx.get_saved_variables()[0];
        var s = (Settings)ctx.get_data("settings");
        var grad = grad_output.to_type(rois.dtype).contiguous();
        Tensor gradInput;
        using (BackwardProfiler.Region("roi_align"))
            gradInput = Backward(grad, rois, s);
        return BackwardGradients.Return([gradInput, null, null, null, null, null, null], grad_output);
    }

    private static Tensor Forward(Tensor features, Tensor rois, Settings s)
    {
        DetectionNative.EnsureLoaded();
        long k = rois.shape[0];
        var output = empty(new[] { k, s.Channels, s.PooledH, s.PooledW }, features.dtype, features.device);
        var (fp, rp, op) = (TensorMemory.Of(features), TensorMemory.Of(rois), TensorMemory.Of(output));
        int aligned = s.Aligned ? 1 : 0;
        int rc = DetectionNative.UsesCuda(features, "RoiAlign forward")
            ? DetectionNative.RoiAlignForwardCudaF32(fp, rp, s.Batch, s.Channels, s.Height, s.Width, k, s.PooledH, s.PooledW,
                s.SpatialScale, s.SamplingRatio, aligned, op, IntPtr.Zero)
            : features.dtype == ScalarType.Float64
                ? DetectionNative.RoiAlignForwardCpuF64(fp, rp, s.Batch, s.Channels, s.Height, s.Width, k, s.PooledH, s.PooledW,
                    s.SpatialScale, s.SamplingRatio, aligned, op)
                : DetectionNative.RoiAlignForwardCpuF32(fp, rp, s.Batch, s.Channels, s.Height, s.Width, k, s.PooledH, s.PooledW,
                    s.SpatialScale, s.SamplingRatio, aligned, op);
        // Referenced until here so neither can be finalised during the call.
        GC.KeepAlive(features);
        GC.KeepAlive(rois);
        DetectionNative.Check(rc, "RoiAlign forward");
        return output;
    }

    private static Tensor Backward(Tensor gradOutput, Tensor rois, Settings s)
    {
        DetectionNative.EnsureLoaded();
        long k = rois.shape[0];
        var gradInput = empty(new[] { s.Batch, s.Channels, s.Height, s.Width }, gradOutput.dtype, gradOutput.device);
        var (gp, rp, ip) = (TensorMemory.Of(gradOutput), TensorMemory.Of(rois), TensorMemory.Of(gradInput));
        int aligned = s.Aligned ? 1 : 0;
        int rc = DetectionNative.UsesCuda(gradOutput, "RoiAlign backward")
            ? DetectionNative.RoiAlignBackwardCudaF32(gp, rp, s.Batch, s.Channels, s.Height, s.Width, k, s.PooledH, s.PooledW,
                s.SpatialScale, s.SamplingRatio, aligned, ip, IntPtr.Zero)
            : gradOutput.dtype == ScalarType.Float64
                ? DetectionNative.RoiAlignBackwardCpuF64(gp, rp, s.Batch, s.Channels, s.Height, s.Width, k, s.PooledH, s.PooledW,
                    s.SpatialScale, s.SamplingRatio, aligned, ip)
                : DetectionNative.RoiAlignBackwardCpuF32(gp, rp, s.Batch, s.Channels, s.Height, s.Width, k, s.PooledH, s.PooledW,
                    s.SpatialScale, s.SamplingRatio, aligned, ip);
        GC.KeepAlive(gradOutput);
        GC.KeepAlive(rois);
        DetectionNative.Check(rc, "RoiAlign backward");
        return gradInput;
    }
}
