using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's MaskRCNNConvUpsampleHead with conv_norm "LN": k × (3×3 conv without bias → LN →
/// ReLU), a 2×2 stride-2 transposed conv + ReLU, and a 1×1 predictor with one mask channel per
/// class (14×14 RoI features → 28×28 logits). Keys: mask_fcn{i}.weight, mask_fcn{i}.norm.*,
/// deconv.weight/bias, predictor.weight/bias. Convs and deconv get c2_msra_fill, the predictor
/// N(0, 0.001²), biases 0.
/// </summary>
public sealed class MaskRcnnConvUpsampleHead : nn.Module<Tensor, Tensor>
{
    private readonly List<NormedConv2d> convs = new();
    private readonly ConvTranspose2d deconv;
    private readonly Conv2d predictor;

    public long InputChannels { get; }
    public long NumClasses { get; }

    /// <param name="convDims">Widths of the 3×3 convs followed by the deconv width (ViTDet: five × 256).</param>
    public MaskRcnnConvUpsampleHead(long inChannels, long numClasses, IReadOnlyList<long> convDims, long seed = 0)
        : base(nameof(MaskRcnnConvUpsampleHead))
    {
        if (inChannels < 1 || numClasses < 1)
            throw new ArgumentException($"MaskRcnnConvUpsampleHead: channels and classes must be positive, got {inChannels} and {numClasses}.");
        if (convDims.Count == 0 || convDims.Any(d => d < 1))
            throw new ArgumentException(
                $"MaskRcnnConvUpsampleHead: conv widths must be a non-empty list of positive numbers (the last one is the deconv), got [{string.Join(", ", convDims)}].");
        InputChannels = inChannels;
        NumClasses = numClasses;
        var generator = new Generator((ulong)seed);
        long channels = inChannels;
        for (int k = 0; k < convDims.Count - 1; k++)
        {
            var conv = new NormedConv2d(channels, convDims[k], 3, 1, generator);
            RoiHeadInit.MsraFill(conv.get_parameter("weight")!, generator);
            register_module($"mask_fcn{k + 1}", conv);
            convs.Add(conv);
            channels = convDims[k];
        }
        deconv = nn.ConvTranspose2d(channels, convDims[^1], 2, stride: 2);
        predictor = nn.Conv2d(convDims[^1], numClasses, 1);
        register_module(nameof(deconv), deconv);
        register_module(nameof(predictor), predictor);
        RoiHeadInit.MsraFill(deconv.weight!, generator);
        RoiHeadInit.Zero(deconv.bias);
        using (no_grad())
            predictor.weight!.normal_(0, 0.001, generator);
        RoiHeadInit.Zero(predictor.bias);
    }

    /// <summary>ViTDet's mask head: four 256-wide convs and a 256-wide deconv.</summary>
    public static MaskRcnnConvUpsampleHead VitDet(long numClasses, long inChannels = 256, long seed = 0) =>
        new(inChannels, numClasses, new long[] { 256, 256, 256, 256, 256 }, seed);

    /// <param name="x">(R, C, S, S) pooled RoI features.</param>
    /// <returns>(R, K, 2S, 2S) mask logits.</returns>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != InputChannels)
            throw new ArgumentException(
                $"MaskRcnnConvUpsampleHead: expected (R, {InputChannels}, S, S) RoI features, got ({string.Join(", ", x.shape)}).");
        using var scope = NewDisposeScope();
        var t = x;
        foreach (var conv in convs)
            t = nn.functional.relu(conv.call(t));
        t = nn.functional.relu(deconv.call(t));
        return predictor.call(t).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Detectron2's mask_rcnn_loss: mean binary cross-entropy with logits between each RoI's channel
    /// of its ground-truth class and its target. With no RoI: a zero that depends on the logits.
    /// </summary>
    /// <param name="logits">(R, K, M, M).</param>
    /// <param name="gtClasses">(R) int64 class of each RoI, in [0, K).</param>
    /// <param name="targets">(R, M, M) bool or float targets.</param>
    public static Tensor Loss(Tensor logits, Tensor gtClasses, Tensor targets)
    {
        long r = logits.shape[0];
        if (gtClasses.shape[0] != r || targets.shape[0] != r || targets.dim() != 3 || targets.shape[1] != logits.shape[2] || targets.shape[2] != logits.shape[3])
            throw new ArgumentException(
                $"MaskRcnnConvUpsampleHead.Loss: logits ({string.Join(", ", logits.shape)}), classes ({string.Join(", ", gtClasses.shape)}) and targets ({string.Join(", ", targets.shape)}) disagree.");
        using var scope = NewDisposeScope();
        if (r == 0)
            return (logits.sum() * 0).MoveToOuterDisposeScope();
        var picked = SelectClass(logits, gtClasses);
        var loss = nn.functional.binary_cross_entropy_with_logits(picked, targets.to_type(picked.dtype));
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>(R, M, M): each RoI's channel of the given class.</summary>
    public static Tensor SelectClass(Tensor logits, Tensor classes)
    {
        using var scope = NewDisposeScope();
        var rows = arange(logits.shape[0], ScalarType.Int64, logits.device);
        return logits[rows, classes.to_type(ScalarType.Int64).to(logits.device)].MoveToOuterDisposeScope();
    }
}
