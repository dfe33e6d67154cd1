using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Diagnostics;
using Vim.Core.Config;
using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// The multi-level neck of the official segmentation backbones (BEiT/mmseg style): four tapped
/// stride-s maps go through fpn1 = ConvT(D→D) → BatchNorm → GELU → ConvT(D→D) (s/4), fpn2 = ConvT(D→D)
/// (s/2), fpn3 = identity (s), fpn4 = MaxPool(2) (2s). Channels stay D. Keys: net.*, fpn1.*, fpn2.*.
/// The fpn1 norm follows the heads' norm (the official configs' SyncBN covers the neck too).
/// </summary>
public sealed class SegmentationPyramid : nn.Module<Tensor, IReadOnlyList<FeatureMap>>
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly nn.Module<Tensor, Tensor> net;
    private readonly Sequential fpn1;
    private readonly Sequential fpn2;
    private readonly Identity fpn3;
    private readonly MaxPool2d fpn4;
#pragma warning restore IDE1006

    // A property, not a field: RegisterComponents would register a second copy of the backbone's weights under "backbone.".
    private ITokenBackbone backbone => (ITokenBackbone)net;

    public SegmentationPyramid(nn.Module<Tensor, Tensor> net, NormKind neckNorm = NormKind.BatchNorm) : base(nameof(SegmentationPyramid))
    {
        _ = net as ITokenBackbone ?? throw new VimException($"SegmentationPyramid: {net.GetType().Name} is not a token backbone.");
        this.net = net;
        long dim = backbone.EmbedDim;
        fpn1 = nn.Sequential(("0", nn.ConvTranspose2d(dim, dim, 2, stride: 2)), ("1", neckNorm == NormKind.SyncBatchNorm ? new SyncBatchNorm(dim) : nn.BatchNorm2d(dim)), ("2", nn.GELU()),
            ("3", nn.ConvTranspose2d(dim, dim, 2, stride: 2)));
        fpn2 = nn.Sequential(("0", nn.ConvTranspose2d(dim, dim, 2, stride: 2)));
        fpn3 = nn.Identity();
        fpn4 = nn.MaxPool2d(2, 2);
        NeckNorm = neckNorm;
        RegisterComponents();
    }

    /// <summary>The norm inside fpn1.</summary>
    public NormKind NeckNorm { get; }

    /// <summary>
    /// This pyramid with its fpn1 norm set to <paramref name="neckNorm"/>: itself when it already is, otherwise a
    /// new pyramid over the same backbone with a freshly initialised neck (this one's neck is disposed, the
    /// backbone moves over). Registry entries build with BatchNorm; the config decides afterwards.
    /// </summary>
    public SegmentationPyramid WithNeckNorm(NormKind neckNorm)
    {
        if (neckNorm == NeckNorm) return this;
        var rebuilt = new SegmentationPyramid(net, neckNorm);
        fpn1.Dispose();
        fpn2.Dispose();
        return rebuilt;
    }

    /// <summary>Channels of every level (the backbone width; the neck keeps it).</summary>
    public long Channels => backbone.EmbedDim;

    /// <summary>Level names and strides, finest first.</summary>
    public IReadOnlyList<(string Name, int Stride)> Levels
    {
        get
        {
            int s = backbone.TokenStride;
            return new[] { s / 4, s / 2, s, s * 2 }.Select(stride => ($"p{(int)Math.Round(Math.Log2(stride))}", stride)).ToArray();
        }
    }

    public override IReadOnlyList<FeatureMap> forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var taps = backbone.ForwardTaps(images);
        if (taps.Count != 4)
            throw new VimException($"SegmentationPyramid needs 4 tapped maps from the backbone, got {taps.Count} (check its TapBlocks).");
        var necks = new nn.Module<Tensor, Tensor>[] { fpn1, fpn2, fpn3, fpn4 };
        var levels = Levels;
        var outputs = new List<FeatureMap>();
        using var neck = BackwardProfiler.Open("neck");
        for (int i = 0; i < 4; i++)
        {
            var map = neck.Output(necks[i].call(neck.Input(taps[i]))).MoveToOuterDisposeScope();
            outputs.Add(new FeatureMap(levels[i].Name, map, levels[i].Stride));
        }
        return outputs;
    }
}
