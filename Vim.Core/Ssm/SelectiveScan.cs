using static TorchSharp.torch;

namespace Vim.Core.Ssm;

/// <summary>
/// The selective scan used by the Mamba mixer: one entry point, semantics of
/// <see cref="SelectiveScanReference"/>. Backends (native CPU, CUDA) are chosen by device.
/// </summary>
public static class SelectiveScan
{
    public static Tensor Apply(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C,
        Tensor? D = null, Tensor? z = null, Tensor? deltaBias = null, bool deltaSoftplus = false)
        => SelectiveScanReference.Forward(u, delta, A, B, C, D, z, deltaBias, deltaSoftplus);
}
