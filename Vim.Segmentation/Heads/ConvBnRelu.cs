using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Config;
using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Segmentation.Heads;

/// <summary>
/// Conv (no bias) → BatchNorm → ReLU, with mmcv ConvModule's parameter names (conv.*, bn.*) so
/// mmseg head weights load by name. The norm is BatchNorm2d or <see cref="SyncBatchNorm"/> (same
/// parameter and buffer names, so checkpoints interchange).
/// </summary>
public sealed class ConvBnRelu : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly BatchNorm bn;

    public ConvBnRelu(long inChannels, long outChannels, long kernelSize, NormKind norm = NormKind.BatchNorm) : base(nameof(ConvBnRelu))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, padding: kernelSize / 2, bias: false);
        bn = norm == NormKind.SyncBatchNorm ? new SyncBatchNorm(outChannels) : nn.BatchNorm2d(outChannels);
        RegisterComponents();
        // mmcv initialises ConvModule convs with kaiming normal (fan_out, relu) and norms with 1/0.
        nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
    }

    public override Tensor forward(Tensor x) => nn.functional.relu(bn.call(conv.call(x)));
}
