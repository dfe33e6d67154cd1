using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

public static class ModelBroadcast
{
    /// <summary>
    /// Overwrites every parameter and buffer (the whole state dict, any dtype) with rank
    /// <paramref name="root"/>'s values, so all replicas start identical however they were initialised.
    /// </summary>
    public static void FromRoot(ICommunicator communicator, nn.Module model, int root = 0) =>
        Broadcast(communicator, model.state_dict().Values, root);

    /// <summary>
    /// Overwrites every buffer (BatchNorm's running statistics and counts) with rank <paramref name="root"/>'s. Gradient
    /// averaging keeps the parameters identical, but plain BatchNorm's running statistics are each rank's own batches':
    /// before an evaluation split over the ranks, so that every share is evaluated by the model rank 0 checkpoints (mmcv's
    /// DistEvalHook broadcast_bn_buffer; torch DDP broadcasts buffers at every forward).
    /// </summary>
    public static void BuffersFromRoot(ICommunicator communicator, nn.Module model, int root = 0) =>
        Broadcast(communicator, model.named_buffers().Select(b => b.buffer), root);

    private static void Broadcast(ICommunicator communicator, IEnumerable<Tensor> tensors, int root)
    {
        if (communicator.WorldSize == 1) return;
        using var noGrad = no_grad();
        foreach (var tensor in tensors)
        {
            using var scope = NewDisposeScope();
            if (tensor.is_contiguous() && communicator.CanReduceOn(tensor.device_type))
            {
                communicator.Broadcast(tensor, root);
            }
            else
            {
                // Strided, or on a device the communicator cannot reach (GPU under MPI): through a contiguous (host) copy.
                var staging = communicator.CanReduceOn(tensor.device_type) ? tensor.contiguous() : tensor.cpu().contiguous();
                communicator.Broadcast(staging, root);
                tensor.copy_(staging);
            }
        }
    }
}
