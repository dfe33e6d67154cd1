using Vim.Core.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Segmentation.Heads;

/// <summary>
/// The UperNet decode head (mmseg UPerHead): a pyramid pooling module (average pools at
/// <c>poolScales</c>, 1×1 ConvBnRelu, upsampled back) on the coarsest level, FPN laterals with
/// top-down fusion, 3×3 FPN convs, all levels upsampled to the finest and concatenated, a 3×3
/// fusion conv, Dropout2d and a 1×1 classifier. Output: logits at the finest input level's
/// resolution (stride 4 for the Vim pyramid). Parameter names follow mmseg.
/// </summary>
public sealed class UperHead : nn.Module<IReadOnlyList<Tensor>, Tensor>
{
    private readonly ModuleList<Sequential> psp_modules;
    private readonly ConvBnRelu bottleneck;
    private readonly ModuleList<ConvBnRelu> lateral_convs;
    private readonly ModuleList<ConvBnRelu> fpn_convs;
    private readonly ConvBnRelu fpn_bottleneck;
    private readonly Dropout2d dropout;
    private readonly Conv2d conv_seg;

    public UperHead(IReadOnlyList<long> inChannels, long channels, long numClasses, IReadOnlyList<long>? poolScales = null, double dropoutRatio = 0.1,
        NormKind norm = NormKind.BatchNorm)
        : base(nameof(UperHead))
    {
        if (inChannels.Count < 2) throw new ArgumentException("UperHead needs at least two input levels", nameof(inChannels));
        poolScales ??= [1, 2, 3, 6];
        InChannels = inChannels;
        long last = inChannels[^1];
        psp_modules = new ModuleList<Sequential>(poolScales
            .Select(s => nn.Sequential(("0", nn.AdaptiveAvgPool2d(s)), ("1", new ConvBnRelu(last, channels, 1, norm))))
            .ToArray());
        bottleneck = new ConvBnRelu(last + poolScales.Count * channels, channels, 3, norm);
        lateral_convs = new ModuleList<ConvBnRelu>(inChannels.Take(inChannels.Count - 1).Select(c => new ConvBnRelu(c, channels, 1, norm)).ToArray());
        fpn_convs = new ModuleList<ConvBnRelu>(inChannels.Take(inChannels.Count - 1).Select(_ => new ConvBnRelu(channels, channels, 3, norm)).ToArray());
        fpn_bottleneck = new ConvBnRelu(inChannels.Count * channels, channels, 3, norm);
        dropout = nn.Dropout2d(dropoutRatio);
        conv_seg = nn.Conv2d(channels, numClasses, 1);
        RegisterComponents();
        // mmseg's decode heads initialise the classifier with N(0, 0.01) and a zero bias.
        using (no_grad())
        {
            nn.init.normal_(conv_seg.weight!, 0, 0.01);
            nn.init.zeros_(conv_seg.bias!);
        }
    }

    public IReadOnlyList<long> InChannels { get; }

    public override Tensor forward(IReadOnlyList<Tensor> inputs)
    {
        if (inputs.Count != InChannels.Count)
            throw new ArgumentException($"UperHead expects {InChannels.Count} feature levels, got {inputs.Count}");
        var laterals = new List<Tensor>(inputs.Count);
        for (int i = 0; i < inputs.Count - 1; i++) laterals.Add(lateral_convs[i].call(inputs[i]));
        laterals.Add(PyramidPooling(inputs[^1]));

        for (int i = laterals.Count - 1; i > 0; i--)
            laterals[i - 1] = laterals[i - 1] + Resize(laterals[i], laterals[i - 1]);

        var outs = new List<Tensor>(inputs.Count);
        for (int i = 0; i < laterals.Count - 1; i++) outs.Add(fpn_convs[i].call(laterals[i]));
        outs.Add(laterals[^1]);
        for (int i = 1; i < outs.Count; i++) outs[i] = Resize(outs[i], outs[0]);

        var fused = fpn_bottleneck.call(cat(outs, dim: 1));
        return conv_seg.call(dropout.call(fused));
    }

    private Tensor PyramidPooling(Tensor x)
    {
        var branches = new List<Tensor> { x };
        foreach (var module in psp_modules) branches.Add(Resize(module.call(x), x));
        return bottleneck.call(cat(branches, dim: 1));
    }

    /// <summary>Bilinear resize to <paramref name="like"/>'s spatial size, align_corners false as mmseg.</summary>
    internal static Tensor Resize(Tensor x, Tensor like)
    {
        var resized = nn.functional.interpolate(x, size: [like.shape[2], like.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        FlopCounter.Add("upsample", FlopFormulas.Interpolate(resized.numel(), InterpolationMode.Bilinear));
        return resized;
    }
}
