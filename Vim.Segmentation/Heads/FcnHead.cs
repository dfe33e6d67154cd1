using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Segmentation.Heads;

/// <summary>
/// The auxiliary FCN head (mmseg FCNHead, concat_input false): <c>numConvs</c> 3×3 ConvBnRelu,
/// Dropout2d, 1×1 classifier, on one pyramid level (stride 16 in the official setup).
/// </summary>
public sealed class FcnHead : nn.Module<Tensor, Tensor>
{
    private readonly Sequential convs;
    private readonly Dropout2d dropout;
    private readonly Conv2d conv_seg;

    public FcnHead(long inChannels, long channels, long numClasses, int numConvs = 1, double dropoutRatio = 0.1,
        NormKind norm = NormKind.BatchNorm) : base(nameof(FcnHead))
    {
        if (numConvs < 1) throw new ArgumentOutOfRangeException(nameof(numConvs), "FcnHead needs at least one conv");
        convs = nn.Sequential(Enumerable.Range(0, numConvs)
            .Select(i => ($"{i}", (nn.Module<Tensor, Tensor>)new ConvBnRelu(i == 0 ? inChannels : channels, channels, 3, norm))).ToArray());
        dropout = nn.Dropout2d(dropoutRatio);
        conv_seg = nn.Conv2d(channels, numClasses, 1);
        RegisterComponents();
        using (no_grad())
        {
            nn.init.normal_(conv_seg.weight!, 0, 0.01);
            nn.init.zeros_(conv_seg.bias!);
        }
    }

    public override Tensor forward(Tensor x) => conv_seg.call(dropout.call(convs.call(x)));
}
