using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Segmentation.Heads;
using Vim.Segmentation.Losses;
using static TorchSharp.torch;

namespace Vim.Segmentation;

/// <summary>
/// A semantic segmentation model as mmseg's EncoderDecoder: a backbone with its multi-level neck
/// (<see cref="SegmentationPyramid"/>), the UperNet decode head and an optional FCN auxiliary head
/// (training only). Inputs are normalised images (B, 3, H, W); any H, W works (padded internally to
/// the pyramid's coarsest stride).
/// </summary>
public sealed class EncoderDecoder : nn.Module<Tensor, Tensor>
{
    private readonly SegmentationPyramid backbone;
    private readonly UperHead decode_head;
    private readonly FcnHead? auxiliary_head;
    private readonly SegmentationHeadConfig _heads;
    private readonly IReadOnlyList<WeightedLoss> _decodeLosses;
    private readonly OhemPixelSampler? _sampler;
    private readonly int _padMultiple;

    /// <summary>model.seg_head.class_weights as a tensor, built on the first loss and again only when the logits move to
    /// another device or precision (<see cref="ClassWeights"/>); the model disposes it.</summary>
    private Tensor? _classWeights;

    public EncoderDecoder(SegmentationPyramid backbone, SegmentationHeadConfig heads, int numClasses) : base(nameof(EncoderDecoder))
    {
        this.backbone = backbone;
        _heads = heads;
        _decodeLosses = DecodeLosses.Resolve(heads);
        _sampler = OhemPixelSampler.FromConfig(heads, _decodeLosses);
        var levels = backbone.Levels;
        long channels = backbone.Channels;
        if (heads.AuxiliaryChannels > 0 && (heads.AuxiliaryInIndex < 0 || heads.AuxiliaryInIndex >= levels.Count))
            throw new VimException($"model.seg_head.auxiliary_in_index must be in [0, {levels.Count}) (the pyramid level the auxiliary head reads), got {heads.AuxiliaryInIndex}");
        if (!(heads.DropoutRatio >= 0 && heads.DropoutRatio < 1))
            throw new VimException($"model.seg_head.dropout_ratio must be in [0, 1) (the share of features dropped before the classifier), got {heads.DropoutRatio}");
        if (heads.PoolScales.Count == 0 || heads.PoolScales.Any(scale => scale < 1))
            throw new VimException($"model.seg_head.pool_scales must be positive grid sizes for the pyramid pooling, e.g. [1, 2, 3, 6], got [{string.Join(", ", heads.PoolScales)}]");
        decode_head = new UperHead(levels.Select(_ => channels).ToArray(), heads.Channels, numClasses,
            heads.PoolScales.Select(s => (long)s).ToArray(), heads.DropoutRatio, heads.Norm);
        try
        {
            if (heads.AuxiliaryChannels > 0)
                auxiliary_head = new FcnHead(channels, heads.AuxiliaryChannels, numClasses, numConvs: 1, heads.DropoutRatio, heads.Norm);
        }
        catch
        {
            // No caller gets the half-built model, so the decode head would outlive the error; the backbone stays the caller's.
            decode_head.Dispose();
            throw;
        }
        _padMultiple = levels.Max(l => l.Stride);
        NumClasses = numClasses;
        RegisterComponents();
    }

    public int NumClasses { get; }

    public SegmentationPyramid Backbone => backbone;

    /// <summary>Builds the model a config describes (model.backbone.name must be a segmentation backbone, e.g. vimseg_tiny).</summary>
    public static EncoderDecoder FromConfig(ExperimentConfig config, long seed)
    {
        var name = config.Model.Backbone.Name;
        var module = ModelRegistry.Create(name, seed, BackboneOverrides.From(config.Model.Backbone));
        if (module is not SegmentationPyramid pyramid)
        {
            module.Dispose();
            var segmentation = ModelRegistry.All.Where(e => e.Name.Contains("seg", StringComparison.Ordinal)).Select(e => e.Name);
            throw new VimException($"model.backbone.name '{name}' is not a segmentation backbone; use one of {string.Join(", ", segmentation)}");
        }
        try
        {
            pyramid = pyramid.WithNeckNorm(config.Model.SegHead.Norm);
            torch.manual_seed(seed + 2);
            return new EncoderDecoder(pyramid, config.Model.SegHead, config.Model.NumClasses);
        }
        catch
        {
            // The model was not built, so nothing else owns the pyramid: its tensors would outlive the error.
            pyramid.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Decode-head logits resized to the input size (B, K, H, W), float32 also under autocast (whose convolutions
    /// compute in a half type), so that sliding-window sums, probabilities and label maps are those of an fp32 run.
    /// </summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        Tensor padded;
        long height, width;
        IReadOnlyList<FeatureMap> features;
        using (StageProfiler.Measure(SegmentationStages.Backbone))
        {
            (padded, height, width) = Pad(images);
            features = backbone.call(padded);
        }
        using (StageProfiler.Measure(SegmentationStages.DecodeHead))
        {
            var logits = decode_head.call(features.Select(f => f.Map).ToList());
            return Autocast.WidenHalf(ResizeAndCrop(logits, padded, height, width)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// The training terms under mmseg's names: each decode loss, weighted (decode.loss_ce, decode.loss_dice,
    /// decode.loss_lovasz: model.seg_head.losses, or its shorthand loss), and the auxiliary head's, the first decode loss
    /// weighted auxiliary_loss_weight (aux.loss_ce, …), with each head's pixel accuracy on the batch in percent
    /// (decode.acc_seg, aux.acc_seg, logged only). A sampler (model.seg_head.sampler) chooses the pixels of the decode
    /// head's cross-entropy.
    /// </summary>
    public Dictionary<string, Tensor> Losses(Tensor images, Tensor labels)
    {
        var (padded, height, width) = Pad(images);
        // Under `vim bench train --backward-breakdown` each part's inputs and outputs are marked (BackwardProfiler), so that
        // its backward is timed as its own; the loss terms' backward falls outside the parts.
        IReadOnlyList<FeatureMap> features;
        using (StageProfiler.Measure(SegmentationStages.Backbone))
        using (var marks = BackwardProfiler.Open(SegmentationStages.Backbone))
            features = backbone.call(padded).Select(f => f with { Map = marks.Output(f.Map) }).ToList();
        Tensor decode;
        using (StageProfiler.Measure(SegmentationStages.DecodeHead))
        using (var marks = BackwardProfiler.Open(SegmentationStages.DecodeHead))
            decode = marks.Output(ResizeAndCrop(decode_head.call(features.Select(f => marks.Input(f.Map)).ToList()), padded, height, width));
        var terms = new Dictionary<string, Tensor>();
        using var lossStage = StageProfiler.Measure(SegmentationStages.Losses);
        foreach (var loss in _decodeLosses)
        {
            // Without a threshold the sampler ranks pixels as mmseg does, by the sum of the decode losses computed per pixel;
            // its Dice and Lovász give one number for the whole batch, the same at every pixel, so the weighted
            // cross-entropy ranks alone.
            var value = loss.Kind == SegmentationLossKind.CrossEntropy && _sampler is not null
                ? _sampler.CrossEntropy(decode, labels, ClassWeights(decode), loss.Weight, _heads.AverageOverNonIgnored)
                : PixelLoss(loss.Kind, decode, labels);
            terms[$"decode.{loss.Name}"] = loss.Weight * value;
        }
        terms["decode.acc_seg"] = PixelAccuracy(decode, labels);
        if (auxiliary_head is not null)
        {
            var auxiliaryLoss = _decodeLosses[0];
            Tensor aux;
            using (var marks = BackwardProfiler.Open("auxiliary_head"))
                aux = marks.Output(ResizeAndCrop(auxiliary_head.call(marks.Input(features[_heads.AuxiliaryInIndex].Map)), padded, height, width));
            terms[$"aux.{auxiliaryLoss.Name}"] = _heads.AuxiliaryLossWeight * PixelLoss(auxiliaryLoss.Kind, aux, labels);
            terms["aux.acc_seg"] = PixelAccuracy(aux, labels);
        }
        return terms;
    }

    /// <summary>
    /// Top-1 accuracy over the labelled pixels, in percent (mmseg's accuracy()); 0 for a batch without a labelled pixel,
    /// so that every batch logs the same terms.
    /// </summary>
    private Tensor PixelAccuracy(Tensor logits, Tensor labels)
    {
        using var noGrad = no_grad();
        var labelled = labels.ne(_heads.IgnoreIndex);
        var correct = logits.argmax(1).eq(labels).logical_and(labelled).sum().to_type(ScalarType.Float32);
        return correct * 100f / labelled.sum().clamp_min(1).to_type(ScalarType.Float32);
    }

    /// <summary>One loss of the logits over every labelled pixel.</summary>
    private Tensor PixelLoss(SegmentationLossKind kind, Tensor logits, Tensor labels) => kind switch
    {
        SegmentationLossKind.CrossEntropy => SegmentationLosses.CrossEntropy(logits, labels, _heads.IgnoreIndex, ClassWeights(logits),
            _heads.AverageOverNonIgnored),
        SegmentationLossKind.Dice => SegmentationLosses.Dice(logits, labels, _heads.IgnoreIndex),
        SegmentationLossKind.Lovasz => SegmentationLosses.LovaszSoftmax(logits, labels, _heads.IgnoreIndex),
        _ => throw new VimException($"model.seg_head loss {kind} is not supported"),
    };

    /// <summary>
    /// model.seg_head.class_weights as a tensor on the logits' device, null for none: float64 for float64 logits, float32
    /// otherwise (autocast computes cross-entropy in float32, so half-precision weights would only round them). Built once
    /// per device and precision rather than on every loss; kept out of dispose scopes, as the model owns it.
    /// </summary>
    private Tensor? ClassWeights(Tensor logits)
    {
        if (_heads.ClassWeights.Count == 0) return null;
        if (_heads.ClassWeights.Count != NumClasses)
            throw new VimException($"model.seg_head.class_weights has {_heads.ClassWeights.Count} entries, expected one per class ({NumClasses})");
        var dtype = logits.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        if (_classWeights is { } built && built.device_type == logits.device_type && built.device_index == logits.device_index && built.dtype == dtype)
            return built;
        _classWeights?.Dispose();
        var weights = dtype == ScalarType.Float64
            ? tensor(_heads.ClassWeights.ToArray(), device: logits.device)
            : tensor(_heads.ClassWeights.Select(w => (float)w).ToArray(), device: logits.device);
        _classWeights = weights.DetachFromDisposeScope();
        return _classWeights;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _classWeights?.Dispose();
            _classWeights = null;
        }
        base.Dispose(disposing);
    }

    /// <summary>Pads bottom/right with zeros (the normalised mean) to a multiple of the coarsest pyramid stride.</summary>
    private (Tensor Padded, long Height, long Width) Pad(Tensor images)
    {
        long height = images.shape[2], width = images.shape[3];
        long padH = (_padMultiple - height % _padMultiple) % _padMultiple;
        long padW = (_padMultiple - width % _padMultiple) % _padMultiple;
        var padded = padH == 0 && padW == 0 ? images : nn.functional.pad(images, [0, padW, 0, padH]);
        return (padded, height, width);
    }

    private static Tensor ResizeAndCrop(Tensor logits, Tensor padded, long height, long width)
    {
        var full = UperHead.Resize(logits, padded);
        return full.shape[2] == height && full.shape[3] == width ? full : full[.., .., ..(int)height, ..(int)width];
    }
}
