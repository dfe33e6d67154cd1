using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's FastRCNNConvFCHead with conv_norm "LN": k × (3×3 conv without bias → channels-first
/// LayerNorm → ReLU), flatten, m × (Linear → ReLU). Keys: conv{i}.weight, conv{i}.norm.weight/bias,
/// fc{j}.weight/bias (1-based as in Detectron2). Convs get c2_msra_fill, FCs c2_xavier_fill.
/// </summary>
public sealed class FastRcnnConvFcHead : nn.Module<Tensor, Tensor>
{
    private readonly List<NormedConv2d> convs = new();
    private readonly List<Linear> fcs = new();

    public long InputChannels { get; }
    public long PoolerResolution { get; }

    /// <summary>Width of the output vector (the last FC, or the flattened conv output without FCs).</summary>
    public long OutputSize { get; }

    /// <param name="inChannels">Channels of the pooled RoI features (256 for the ViTDet pyramid).</param>
    /// <param name="poolerResolution">Side of the pooled RoI features (7).</param>
    /// <param name="convDims">Output width of each 3×3 conv (ViTDet: four × 256).</param>
    /// <param name="fcDims">Width of each FC (ViTDet: one × 1024).</param>
    public FastRcnnConvFcHead(long inChannels, long poolerResolution, IReadOnlyList<long> convDims, IReadOnlyList<long> fcDims,
        long seed = 0) : base(nameof(FastRcnnConvFcHead))
    {
        if (inChannels < 1 || poolerResolution < 1)
            throw new ArgumentException(
                $"FastRcnnConvFcHead: input channels and pooler resolution must be positive, got {inChannels} and {poolerResolution}.");
        if (convDims.Count + fcDims.Count == 0)
            throw new ArgumentException("FastRcnnConvFcHead: at least one conv or FC layer is required.");
        if (convDims.Concat(fcDims).Any(d => d < 1))
            throw new ArgumentException(
                $"FastRcnnConvFcHead: layer widths must be positive, got convs [{string.Join(", ", convDims)}] and FCs [{string.Join(", ", fcDims)}].");
        InputChannels = inChannels;
        PoolerResolution = poolerResolution;
        var generator = new Generator((ulong)seed);
        long channels = inChannels;
        for (int k = 0; k < convDims.Count; k++)
        {
            var conv = new NormedConv2d(channels, convDims[k], 3, 1, generator);
            RoiHeadInit.MsraFill(conv.get_parameter("weight")!, generator);
            register_module($"conv{k + 1}", conv);
            convs.Add(conv);
            channels = convDims[k];
        }
        long width = channels * poolerResolution * poolerResolution;
        for (int k = 0; k < fcDims.Count; k++)
        {
            var fc = nn.Linear(width, fcDims[k]);
            RoiHeadInit.XavierFill(fc.weight!, generator);
            RoiHeadInit.Zero(fc.bias);
            register_module($"fc{k + 1}", fc);
            fcs.Add(fc);
            width = fcDims[k];
        }
        OutputSize = width;
    }

    /// <summary>ViTDet's box head: four 256-wide convs and one 1024-wide FC.</summary>
    public static FastRcnnConvFcHead VitDet(long inChannels = 256, long poolerResolution = 7, long seed = 0) =>
        new(inChannels, poolerResolution, new long[] { 256, 256, 256, 256 }, new long[] { 1024 }, seed);

    /// <param name="x">(R, C, S, S) pooled RoI features.</param>
    /// <returns>(R, OutputSize).</returns>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != InputChannels || x.shape[2] != PoolerResolution || x.shape[3] != PoolerResolution)
            throw new ArgumentException(
                $"FastRcnnConvFcHead: expected (R, {InputChannels}, {PoolerResolution}, {PoolerResolution}) RoI features, got ({string.Join(", ", x.shape)}).");
        using var scope = NewDisposeScope();
        var t = x;
        foreach (var conv in convs)
            t = nn.functional.relu(conv.call(t));
        t = t.flatten(1);
        foreach (var fc in fcs)
            t = nn.functional.relu(fc.call(t));
        return t.MoveToOuterDisposeScope();
    }
}
