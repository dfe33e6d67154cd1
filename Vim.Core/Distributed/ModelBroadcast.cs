using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

public static class ModelBroadcast
{
    /// <summary>
    /// Overwrites every parameter and buffer (the whole state dict, any dtype) with rank
    /// <paramref name="root"/>'s values, so all replicas start identical however they were initialised.
    /// </summary>
    public static void FromRoot(ICommunicator communicator, nn.Module model, int root = 0)
    {
        if (communicator.WorldSize == 1) return;
        using var noGrad = no_grad();
        foreach (var (name, tensor) in model.state_dict())
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
