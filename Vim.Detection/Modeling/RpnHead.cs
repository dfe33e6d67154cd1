using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's StandardRPNHead: shared 3×3 convs with ReLU (conv_dims; −1 keeps the input
/// width), then per level a 1×1 conv to A objectness logits and one to 4A anchor deltas.
/// Keys: conv.conv{k}.weight/bias, objectness_logits.*, anchor_deltas.*.
/// </summary>
public sealed class RpnHead : nn.Module<IReadOnlyList<Tensor>, (List<Tensor> Logits, List<Tensor> Deltas)>
{
    private readonly List<Conv2d> convs = new();
    private readonly Conv2d objectness_logits;
    private readonly Conv2d anchor_deltas;

    public long AnchorsPerLocation { get; }

    /// <param name="convDims">Output width of each shared conv; −1 = the input width (ViTDet: [−1, −1]).</param>
    /// <param name="seed">Seed of the N(0, 0.01²) weight init (biases start at 0).</param>
    public RpnHead(long inChannels, long anchorsPerLocation, IReadOnlyList<long>? convDims = null, long seed = 0)
        : base(nameof(RpnHead))
    {
        if (inChannels < 1 || anchorsPerLocation < 1)
            throw new ArgumentException($"RpnHead: channels and anchors per location must be positive, got {inChannels} and {anchorsPerLocation}.");
        convDims ??= new long[] { -1, -1 };
        if (convDims.Count == 0)
            throw new ArgumentException("RpnHead: at least one shared conv is required.", nameof(convDims));
        AnchorsPerLocation = anchorsPerLocation;
        long channels = inChannels;
        var named = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (int k = 0; k < convDims.Count; k++)
        {
            long outChannels = convDims[k] == -1 ? channels : convDims[k];
            if (outChannels < 1)
                throw new ArgumentException($"RpnHead: conv_dims[{k}] must be -1 or positive, got {convDims[k]}.", nameof(convDims));
            var conv = nn.Conv2d(channels, outChannels, 3, padding: 1);
            convs.Add(conv);
            named.Add(($"conv{k}", conv));
            channels = outChannels;
        }
        register_module("conv", nn.Sequential(named.ToArray()));
        objectness_logits = nn.Conv2d(channels, anchorsPerLocation, 1);
        anchor_deltas = nn.Conv2d(channels, anchorsPerLocation * 4, 1);
        register_module(nameof(objectness_logits), objectness_logits);
        register_module(nameof(anchor_deltas), anchor_deltas);

        var generator = new Generator((ulong)seed);
        using (no_grad())
        {
            foreach (var conv in convs.Append(objectness_logits).Append(anchor_deltas))
            {
                conv.weight!.normal_(0, 0.01, generator);
                conv.bias!.zero_();
            }
        }
    }

    /// <summary>Per level: logits (N, A, H, W) and deltas (N, 4A, H, W).</summary>
    public override (List<Tensor> Logits, List<Tensor> Deltas) forward(IReadOnlyList<Tensor> features)
    {
        var logits = new List<Tensor>();
        var deltas = new List<Tensor>();
        foreach (var x in features)
        {
            using var scope = NewDisposeScope();
            var t = x;
            foreach (var conv in convs)
                t = nn.functional.relu(conv.call(t));
            logits.Add(objectness_logits.call(t).MoveToOuterDisposeScope());
            deltas.Add(anchor_deltas.call(t).MoveToOuterDisposeScope());
        }
        return (logits, deltas);
    }
}
