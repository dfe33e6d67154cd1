using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>
/// y = (x − mean)·invstd·weight + bias with mean and invstd of the global batch (computed by the caller).
/// Arguments: x (N, C, …), weight (C), bias (C)?, mean (C), invstd (C), count (long, global values per
/// channel), communicator. The backward is SyncBN's: the weight and bias gradients are this rank's own
/// (the gradient averaging adds the ranks' up), while the input gradient needs Σdy and Σdy·(x − mean)
/// over the global batch, which one all-reduce provides.
/// </summary>
internal sealed class SyncBatchNormFunction : torch.autograd.SingleTensorFunction<SyncBatchNormFunction>
{
    public override string Name => "VimDenseSyncBatchNorm";

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        if (vars.Length != 7)
            throw new ArgumentException($"SyncBatchNormFunction expects 7 arguments, got {vars.Length}");
        var x = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var bias = vars[2] as Tensor;
        var mean = (Tensor)vars[3];
        var invstd = (Tensor)vars[4];
        ctx.save_for_backward([x, weight, mean, invstd]);
        ctx.save_data("count", (long)vars[5]);
        ctx.save_data("communicator", vars[6]);
        ctx.save_data("needs", new[] { x.requires_grad, weight.requires_grad, bias?.requires_grad ?? false });
        var shape = ChannelShape(x);
        var scale = (invstd * weight).view(shape);
        var output = (x - mean.view(shape)) * scale;
        return bias is null ? output : output + bias.view(shape);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = BackwardGradients.Begin();
        var saved = ctx.get_saved_variables();
        var (x, weight, mean, invstd) = (saved[0], saved[1], saved[2], saved[3]);
        long count = (long)ctx.get_data("count");
        var communicator = (ICommunicator)ctx.get_data("communicator");
        var needs = (bool[])ctx.get_data("needs");
        var shape = ChannelShape(x);
        var dims = Enumerable.Range(0, (int)x.dim()).Where(d => d != 1).Select(d => (long)d).ToArray();
        var centred = x - mean.view(shape);
        var sumDy = grad_output.sum(dims);
        var sumDyCentred = (grad_output * centred).sum(dims);

        Tensor? dx = null;
        if (needs[0])
        {
            // The input gradient of the global batch norm: every rank's Σdy and Σdy·(x − mean).
            long channels = x.shape[1];
            var where = communicator.CanReduceOn(x.device_type) ? x.device : CPU;
            var sums = cat([sumDy, sumDyCentred]).to(ScalarType.Float64).to(where).contiguous();
            communicator.AllReduceSum(sums);
            var globalSums = sums.to(x.dtype).to(x.device);
            var meanDy = (globalSums[..(int)channels] / count).view(shape);
            var meanDyCentred = (globalSums[(int)channels..] / count).view(shape);
            var invstdB = invstd.view(shape);
            dx = (grad_output - meanDy - centred * invstdB.square() * meanDyCentred) * (invstdB * weight.view(shape));
        }
        return BackwardGradients.Return(
        [
            dx,
            needs[1] ? sumDyCentred * invstd : null,
            needs[2] ? sumDy : null,
            null, null, null, null,
        ], grad_output);
    }

    /// <summary>(1, C, 1, …): a per-channel vector broadcast over an (N, C, …) tensor.</summary>
    private static long[] ChannelShape(Tensor x)
    {
        var shape = Enumerable.Repeat(1L, (int)x.dim()).ToArray();
        shape[1] = x.shape[1];
        return shape;
    }
}
