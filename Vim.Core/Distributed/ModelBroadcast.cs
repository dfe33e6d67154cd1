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
            if (tensor.device_type != DeviceType.CPU)
                throw new VimException($"model broadcast: '{name}' is on {tensor.device}; the MPI communicator moves CPU tensors");
            if (tensor.is_contiguous())
            {
                communicator.Broadcast(tensor, root);
            }
            else
            {
                var staging = tensor.contiguous();
                communicator.Broadcast(staging, root);
                tensor.copy_(staging);
            }
        }
    }
}
