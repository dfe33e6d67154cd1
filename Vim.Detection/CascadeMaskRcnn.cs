using TorchSharp;
using Vim.Core.Diagnostics;
using Vim.Core.Models;
using Vim.Detection.Modeling;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// Cascade Mask R-CNN as the official ViTDet-style setup builds it (detectron2 GeneralizedRCNN):
/// a plain backbone with its simple feature pyramid (p2–p6), an RPN on all five levels, and
/// three-stage cascade box heads plus a mask head on p2–p5. With one class-specific box stage it is ViTDet's Mask R-CNN,
/// without the mask head Faster R-CNN (<see cref="CascadeRoiHeadsSettings"/>). Module names follow detectron2
/// (backbone, proposal_generator, roi_heads). Inputs are normalised images (B, 3, H, W) whose valid
/// (unpadded) sizes are given per image; any H, W works (padded internally to the pyramid stride).
/// </summary>
public sealed class CascadeMaskRcnn : nn.Module
{
    // The p5 max-pool halves the stride-16 map, so the padded input must tile stride 32.
    private const int PadMultiple = 32;
    private readonly SimpleFeaturePyramid backbone;
    private readonly Rpn proposal_generator;
    private readonly CascadeRoiHeads roi_heads;

    public CascadeMaskRcnn(SimpleFeaturePyramid backbone, CascadeRoiHeadsSettings roiSettings, RpnSettings? rpnSettings = null, long seed = 0)
        : base(nameof(CascadeMaskRcnn))
    {
        if (backbone.Levels.Count != 5 || !backbone.TopBlock)
            throw new ArgumentException("CascadeMaskRcnn needs the five-level pyramid p2–p6 (scale factors 4, 2, 1, 0.5 and the top block)", nameof(backbone));
        this.backbone = backbone;
        proposal_generator = new Rpn(backbone.OutChannels, AnchorGenerator.VitDetPyramid(rpnSettings ?? new RpnSettings()), rpnSettings, seed: seed + 1);
        try
        {
            roi_heads = new CascadeRoiHeads(backbone.OutChannels, roiSettings, seed + 2);
        }
        catch
        {
            // No caller gets the half-built detector, so its RPN would outlive the error; the backbone stays the caller's.
            proposal_generator.Dispose();
            throw;
        }
        RegisterComponents();
    }

    public CascadeRoiHeads RoiHeads => roi_heads;

    /// <summary>
    /// Training losses, named as detectron2 names them (loss_rpn_cls, loss_rpn_loc, loss_cls_stage0, …, loss_mask; one box
    /// stage: loss_cls, loss_box_reg), and detectron2's training statistics beside them (rpn/num_pos_anchors, …,
    /// <see cref="DetectionStatistics"/>), which name no loss and are logged only.
    /// </summary>
    /// <param name="targets">Per image: non-crowd ground truth (boxes, int64 classes, (G, H, W) masks at the valid size).</param>
    public Dictionary<string, Tensor> Losses(Tensor images, IReadOnlyList<(long Height, long Width)> imageSizes,
        IReadOnlyList<Instances> targets, Generator? generator = null)
    {
        if (!training) throw new InvalidOperationException("CascadeMaskRcnn.Losses needs training mode (call train()).");
        // Timed under `vim train --profile` (DetectionStages); otherwise a Measure costs one static read.
        // Under `vim bench train --backward-breakdown` each part's inputs and losses are marked (BackwardProfiler), in
        // forward order, so that its backward is timed as its own.
        List<Tensor> features;
        using (StageProfiler.Measure(DetectionStages.Backbone))
        using (var marks = BackwardProfiler.Open(DetectionStages.Backbone))
            features = Features(images).Select(marks.Output).ToList();
        RpnOutput rpn;
        using (StageProfiler.Measure(DetectionStages.Rpn))
        using (var marks = BackwardProfiler.Open(DetectionStages.Rpn))
        {
            rpn = proposal_generator.Forward(features.Select(marks.Input).ToList(), imageSizes, targets.Select(t => t.Boxes).ToList(), generator);
            rpn = rpn with { ObjectnessLoss = marks.Output(rpn.ObjectnessLoss!), BoxLoss = marks.Output(rpn.BoxLoss!) };
        }
        var losses = new Dictionary<string, Tensor> { ["loss_rpn_cls"] = rpn.ObjectnessLoss!, ["loss_rpn_loc"] = rpn.BoxLoss! };
        foreach (var (name, value) in rpn.Statistics!) losses[name] = value;
        CascadeRoiHeadsOutput roi;
        using (StageProfiler.Measure(DetectionStages.RoiHeads))
        using (var marks = BackwardProfiler.Open(DetectionStages.RoiHeads))
        {
            roi = roi_heads.Forward(features.Take(4).Select(marks.Input).ToList(), rpn.Proposals, targets, generator);
            foreach (var (name, value) in roi.Losses) losses[name] = marks.Output(value);
        }
        return losses;
    }

    /// <summary>
    /// Detections per image: boxes, classes, scores and masks pasted into the image (bool (N, H, W),
    /// thresholded at 0.5), in <paramref name="outputSizes"/> coordinates (e.g. the original image
    /// before the test resize; by default the valid input size).
    /// </summary>
    public IReadOnlyList<Instances> Predict(Tensor images, IReadOnlyList<(long Height, long Width)> imageSizes,
        IReadOnlyList<(long Height, long Width)>? outputSizes = null) =>
        Predict(images, imageSizes, outputSizes, withProposals: false).Detections;

    /// <summary>
    /// The detections of <c>Predict</c> and, from the same forward, the RPN's test-time proposals per image: what the box heads received (after the RPN's NMS and
    /// its post-NMS top-k, model.det_head.rpn_post_nms_topk_test), best first, mapped to the output sizes as the detections
    /// are (scaled per axis, clipped, emptied boxes dropped: detectron2's ProposalNetwork post-processing) and scored by
    /// the objectness probability, float64 (the sigmoid of the RPN's logit, as mmdet's RPN head scores its proposals).
    /// </summary>
    public (IReadOnlyList<Instances> Detections, IReadOnlyList<Instances> Proposals) PredictWithProposals(Tensor images,
        IReadOnlyList<(long Height, long Width)> imageSizes, IReadOnlyList<(long Height, long Width)>? outputSizes = null)
    {
        var (detections, proposals) = Predict(images, imageSizes, outputSizes, withProposals: true);
        return (detections, proposals!);
    }

    private (IReadOnlyList<Instances> Detections, IReadOnlyList<Instances>? Proposals) Predict(Tensor images,
        IReadOnlyList<(long Height, long Width)> imageSizes, IReadOnlyList<(long Height, long Width)>? outputSizes, bool withProposals)
    {
        if (training) throw new InvalidOperationException("CascadeMaskRcnn.Predict needs eval mode (call eval()).");
        using var noGrad = no_grad();
        var (features, proposals) = FeaturesAndProposals(images, imageSizes);
        var detections = roi_heads.Forward(features.Take(4).ToList(), proposals).Detections!;
        Instances AtOutputSize(Instances x, int i) =>
            DetectionPostprocessor.ToOutputSize(x, outputSizes?[i].Height ?? x.ImageHeight, outputSizes?[i].Width ?? x.ImageWidth);
        List<Instances> found;
        using (StageProfiler.Measure(DetectionStages.Paste))
            found = detections.Select(AtOutputSize).ToList();
        if (!withProposals) return (found, null);
        // Only the order of the scores matters to recall; the probability is what mmdet writes. Float64 keeps logits that
        // float32's sigmoid would round to the same 1.0 apart.
        var mapped = proposals.Select((p, i) => AtOutputSize(
            new Instances(p.ImageHeight, p.ImageWidth, p.Boxes, scores: p.Scores!.to_type(ScalarType.Float64).sigmoid()), i)).ToList();
        return (found, mapped);
    }

    /// <summary>The most proposals the RPN passes to the box heads per image at test (its post-NMS top-k).</summary>
    public long ProposalsPerImage => proposal_generator.Settings.PostNmsTopKTest;

    public Rpn ProposalGenerator => proposal_generator;

    /// <summary>Whether the detector predicts masks (its mask head is on).</summary>
    public bool MaskOn => roi_heads.MaskHead is not null;

    /// <summary>
    /// One test-time augmentation pass over one image: its RoI features (p2–p5, kept for <see cref="MaskProbabilities"/>) and
    /// its detections without masks, boxes in the input's coordinates (its valid size <paramref name="imageSize"/>), not
    /// mapped to any output size. The features belong to the caller's dispose scope.
    /// </summary>
    public (List<Tensor> RoiFeatures, Instances Detections) DetectBoxes(Tensor image, (long Height, long Width) imageSize)
    {
        if (image.dim() != 4 || image.shape[0] != 1)
            throw new ArgumentException($"CascadeMaskRcnn.DetectBoxes takes one image (1, 3, H, W), got [{string.Join(", ", image.shape)}]", nameof(image));
        var (features, detections) = DetectBoxes(image, [imageSize]);
        return (features, detections[0]);
    }

    /// <summary>
    /// <see cref="DetectBoxes(Tensor, ValueTuple{long, long})"/> of a batch (B, 3, H, W): the batch's RoI features and each
    /// image's detections, boxes in its input coordinates (its valid size in <paramref name="imageSizes"/>).
    /// </summary>
    public (List<Tensor> RoiFeatures, IReadOnlyList<Instances> Detections) DetectBoxes(Tensor images, IReadOnlyList<(long Height, long Width)> imageSizes)
    {
        if (training) throw new InvalidOperationException("CascadeMaskRcnn.DetectBoxes needs eval mode (call eval()).");
        if (images.dim() != 4 || images.shape[0] != imageSizes.Count)
            throw new ArgumentException($"CascadeMaskRcnn.DetectBoxes: {imageSizes.Count} image sizes for images [{string.Join(", ", images.shape)}]", nameof(imageSizes));
        using var noGrad = no_grad();
        var (features, proposals) = FeaturesAndProposals(images, imageSizes);
        var roiFeatures = features.Take(4).ToList();
        return (roiFeatures, roi_heads.DetectBoxes(roiFeatures, proposals));
    }

    /// <summary>
    /// (N, M, M) mask probabilities of each detection's class at its box, from RoI features <see cref="DetectBoxes(Tensor, ValueTuple{long, long})"/> returned
    /// (the boxes in that pass's input coordinates). Needs the mask head (<see cref="MaskOn"/>).
    /// </summary>
    public Tensor MaskProbabilities(IReadOnlyList<Tensor> roiFeatures, Instances detections) => MaskProbabilities(roiFeatures, [detections]);

    /// <summary>
    /// The mask probabilities of a batch's detections (one <see cref="Instances"/> per image of the batch the RoI features
    /// hold), stacked image after image: (N₀ + N₁ + …, M, M).
    /// </summary>
    public Tensor MaskProbabilities(IReadOnlyList<Tensor> roiFeatures, IReadOnlyList<Instances> detections) =>
        roi_heads.MaskProbabilities(roiFeatures, detections);

    /// <summary>
    /// The size a (<paramref name="height"/>, <paramref name="width"/>) input is zero-padded to before the backbone: the
    /// backbone's square when it fits (detectron2's square_pad), else the next multiple of 32 on each side. Images padded to
    /// one size can share a batch without changing each other's result.
    /// </summary>
    public (long Height, long Width) InputSize(long height, long width)
    {
        long square = backbone.SquarePad;
        if (height <= square && width <= square) return (square, square);
        return (height + (PadMultiple - height % PadMultiple) % PadMultiple, width + (PadMultiple - width % PadMultiple) % PadMultiple);
    }

    /// <summary>The pyramid features (p2–p6) and the RPN's proposals of a batch at inference.</summary>
    private (List<Tensor> Features, IReadOnlyList<Instances> Proposals) FeaturesAndProposals(Tensor images, IReadOnlyList<(long Height, long Width)> imageSizes)
    {
        // Each stage is timed when a profiler asks for it (DetectionStages); otherwise a Measure costs one static read.
        List<Tensor> features;
        using (StageProfiler.Measure(DetectionStages.Backbone))
            features = Features(images);
        using (StageProfiler.Measure(DetectionStages.Rpn))
            return (features, proposal_generator.Forward(features, imageSizes).Proposals);
    }

    /// <summary>
    /// Pyramid features of a batch zero-padded to the backbone's square (detectron2's square_pad: the content sits top
    /// left, the valid sizes travel separately); a batch larger than the square is padded to a multiple of 32 instead.
    /// </summary>
    private List<Tensor> Features(Tensor images)
    {
        long height = images.shape[2], width = images.shape[3];
        var (paddedHeight, paddedWidth) = InputSize(height, width);
        long padH = paddedHeight - height, padW = paddedWidth - width;
        var padded = padH == 0 && padW == 0 ? images : nn.functional.pad(images, [0, padW, 0, padH]);
        return backbone.call(padded).Select(level => level.Map).ToList();
    }
}
