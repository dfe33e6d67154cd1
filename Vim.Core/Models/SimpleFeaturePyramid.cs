using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Diagnostics;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// ViTDet's simple feature pyramid on a plain (single-scale) backbone: from the last stride-s map,
/// scale 4 = ConvT(D→D/2) → LN → GELU → ConvT(D/2→D/4); scale 2 = ConvT(D→D/2); scale 1 = identity;
/// scale ½ = MaxPool(2); each then Conv1×1 + LN and Conv3×3 + LN to <c>outChannels</c>; plus a top
/// level by max-pool(k 1, s 2) of the coarsest. Keys: net.* (the backbone), simfp_{stage}.*.
/// </summary>
public sealed class SimpleFeaturePyramid : nn.Module<Tensor, IReadOnlyList<FeatureMap>>
{
    // Registered explicitly (not as fields) so the stage keys sit at the top level: simfp_2.0.weight, …
    private readonly List<nn.Module<Tensor, Tensor>> stages = new();
    private readonly ITokenBackbone backbone;
    private readonly (string Name, int Stride)[] levels;

    public bool TopBlock { get; }
    public int OutChannels { get; }

    /// <summary>
    /// The square every batch is zero-padded to (ViTDet's square_pad, 1024 in the official detection configs): the
    /// backbone's own input size, so it always sees the token grid its position embeddings and RoPE were laid out for.
    /// </summary>
    public int SquarePad => backbone.ImageSize;

    public SimpleFeaturePyramid(nn.Module<Tensor, Tensor> net, int outChannels = 256, IReadOnlyList<double>? scaleFactors = null,
        bool topBlock = true, long seed = 0) : base(nameof(SimpleFeaturePyramid))
    {
        backbone = net as ITokenBackbone ?? throw new VimException($"SimpleFeaturePyramid: {net.GetType().Name} is not a token backbone.");
        register_module("net", net);
        OutChannels = outChannels;
        TopBlock = topBlock;
        scaleFactors ??= new[] { 4.0, 2.0, 1.0, 0.5 };
        var generator = new Generator((ulong)seed);
        long dim = backbone.EmbedDim;
        var built = new List<(string, nn.Module<Tensor, Tensor>)>();
        var names = new List<(string, int)>();
        foreach (var scale in scaleFactors)
        {
            var layers = new List<nn.Module<Tensor, Tensor>>();
            long channels = dim;
            switch (scale)
            {
                case 4.0:
                    layers.Add(nn.ConvTranspose2d(dim, dim / 2, 2, stride: 2));
                    layers.Add(new LayerNorm2d(dim / 2));
                    layers.Add(nn.GELU());
                    layers.Add(nn.ConvTranspose2d(dim / 2, dim / 4, 2, stride: 2));
                    channels = dim / 4;
                    break;
                case 2.0:
                    layers.Add(nn.ConvTranspose2d(dim, dim / 2, 2, stride: 2));
                    channels = dim / 2;
                    break;
                case 1.0:
                    break;
                case 0.5:
                    layers.Add(nn.MaxPool2d(2, 2));
                    break;
                default:
                    throw new VimException($"SimpleFeaturePyramid: scale factor {scale} is not one of 4, 2, 1, 0.5.");
            }
            layers.Add(new NormedConv2d(channels, outChannels, 1, 0, generator));
            layers.Add(new NormedConv2d(outChannels, outChannels, 3, 1, generator));
            int stride = (int)(backbone.TokenStride / scale);
            int stage = (int)Math.Round(Math.Log2(stride));
            built.Add(($"simfp_{stage}", nn.Sequential(layers.Select((m, i) => (i.ToString(), m)).ToArray())));
            names.Add(($"p{stage}", stride));
        }
        if (topBlock)
        {
            var (_, coarsest) = names[^1];
            names.Add(($"p{(int)Math.Round(Math.Log2(coarsest)) + 1}", coarsest * 2));
        }
        levels = names.ToArray();
        foreach (var (name, stage) in built)
        {
            register_module(name, stage);
            stages.Add(stage);
        }
    }

    /// <summary>Level names and strides, finest first.</summary>
    public IReadOnlyList<(string Name, int Stride)> Levels => levels;

    public override IReadOnlyList<FeatureMap> forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var taps = backbone.ForwardTaps(images);
        using var neck = BackwardProfiler.Open("neck");
        var last = neck.Input(taps[^1]);
        var outputs = new List<FeatureMap>();
        int index = 0;
        foreach (var stage in stages)
        {
            outputs.Add(new FeatureMap(levels[index].Name, stage.call(last), levels[index].Stride));
            index++;
        }
        if (TopBlock)
            outputs.Add(new FeatureMap(levels[^1].Name, nn.functional.max_pool2d(outputs[^1].Map, 1, 2), levels[^1].Stride));
        return outputs.Select(output => output with { Map = neck.Output(output.Map).MoveToOuterDisposeScope() }).ToList();
    }
}
