using NUnit.Framework;
using TorchSharp;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Detection;
using Vim.Detection.Modeling;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>The assembled detector on a tiny Vim backbone: one training step and inference end to end.</summary>
public class CascadeMaskRcnnTests
{
    private static CascadeMaskRcnn Tiny()
    {
        var net = new VisionMamba(VimVariants.DetTiny with { EmbedDim = 32, Depth = 2, ImageSize = 64, DropPathRate = 0 }, 1);
        var pyramid = new SimpleFeaturePyramid(net, outChannels: 32, seed: 2);
        var roi = new CascadeRoiHeadsSettings
        {
            NumClasses = 3, BatchSizePerImage = 16, BoxHeadConvDims = [32, 32], BoxHeadFcDims = [64], MaskHeadConvDims = [32, 32, 32, 32, 32],
        };
        var rpn = new RpnSettings { BatchSizePerImage = 32, PreNmsTopKTrain = 200, PostNmsTopKTrain = 50, PreNmsTopKTest = 200, PostNmsTopKTest = 50 };
        return new CascadeMaskRcnn(pyramid, roi, rpn, seed: 3);
    }

    private static Instances Target(long height, long width, float[,] boxes, long[] classes)
    {
        int n = classes.Length;
        var masks = zeros(new long[] { n, height, width }, dtype: ScalarType.Byte);
        for (int i = 0; i < n; i++)
            masks[i, (int)boxes[i, 1]..(int)boxes[i, 3], (int)boxes[i, 0]..(int)boxes[i, 2]] = tensor((byte)1);
        return new Instances(height, width, new Boxes(tensor(boxes)), tensor(classes), masks: masks);
    }

    [Test]
    public void EveryBatchIsPaddedToTheBackbonesSquare()
    {
        // detectron2's square_pad: a 32×64 image is seen inside the 64×64 grid the position embeddings are laid out
        // for, exactly as if the caller had zero-padded it there (a multiple-of-32 pad would leave it a 2×4 token grid).
        using var scope = NewDisposeScope();
        using var model = Tiny();
        model.eval();
        var image = randn(1, 3, 32, 64, generator: new Generator(8));
        var padded = nn.functional.pad(image, [0, 0, 0, 32]);
        var direct = model.Predict(image, [(32, 64)])[0];
        var byHand = model.Predict(padded, [(32, 64)])[0];
        Assert.That(direct.Count, Is.EqualTo(byHand.Count));
        Assert.That(direct.Count, Is.GreaterThan(0), "an untrained detector scores some boxes above 0.05");
        Assert.That(direct.Boxes.Tensor.allclose(byHand.Boxes.Tensor, rtol: 0, atol: 1e-4), Is.True);
        Assert.That(direct.Scores!.allclose(byHand.Scores!, rtol: 0, atol: 1e-6), Is.True);
    }

    [Test]
    public void TrainingStepGivesEveryLossAndReachesTheHeads()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(4);
        using var model = Tiny();
        model.train();
        var images = randn(2, 3, 64, 64);
        var targets = new[]
        {
            Target(64, 64, new float[,] { { 4, 6, 30, 40 }, { 20, 20, 60, 50 } }, [0, 2]),
            Target(48, 64, new float[0, 4], []), // an image without ground truth; its valid area is 48 rows
        };
        var losses = model.Losses(images, [(64, 64), (48, 64)], targets, new Generator(5));
        Assert.That(losses.Keys, Is.SupersetOf(new[]
        {
            "loss_rpn_cls", "loss_rpn_loc", "loss_cls_stage0", "loss_box_reg_stage0", "loss_cls_stage2", "loss_box_reg_stage2", "loss_mask",
        }));
        foreach (var (name, value) in losses)
            Assert.That(float.IsFinite(value.item<float>()), Is.True, name);
        losses.Where(t => TrainingTerms.IsLoss(t.Key)).Select(t => t.Value).Aggregate((a, b) => a + b).backward();
        var reached = model.named_parameters().Where(p => p.parameter.grad is not null && p.parameter.grad.abs().sum().item<float>() > 0)
            .Select(p => p.name).ToList();
        Assert.That(reached, Has.Some.StartsWith("backbone.net.layers.0."));
        Assert.That(reached, Has.Some.StartsWith("proposal_generator."));
        Assert.That(reached, Has.Some.StartsWith("roi_heads.box_predictor.2."));
        Assert.That(reached, Has.Some.StartsWith("roi_heads.mask_head."));
    }

    [Test]
    public void InferenceReturnsBoundedDetectionsWithPastedMasks()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(6);
        using var model = Tiny();
        model.eval();
        // Image 1 was resized by 0.5 for the network: its detections come back in original pixels.
        var detections = model.Predict(randn(2, 3, 64, 80), [(64, 80), (50, 70)], [(64, 80), (100, 140)]);
        Assert.That(detections, Has.Count.EqualTo(2));
        for (int i = 0; i < 2; i++)
        {
            var d = detections[i];
            Assert.That(d.Count, Is.LessThanOrEqualTo(100));
            if (d.Count == 0) continue;
            var boxes = d.Boxes.Tensor;
            Assert.That(boxes.min().item<float>(), Is.GreaterThanOrEqualTo(0));
            Assert.That(boxes[.., 2].max().item<float>(), Is.LessThanOrEqualTo(d.ImageWidth));
            Assert.That(boxes[.., 3].max().item<float>(), Is.LessThanOrEqualTo(d.ImageHeight));
            Assert.That(d.Masks!.shape, Is.EqualTo(new[] { d.Count, d.ImageHeight, d.ImageWidth }));
            Assert.That(d.Scores!.min().item<float>(), Is.GreaterThanOrEqualTo(0.05f), "test score threshold");
        }
    }
    /// <summary>
    /// Inference inside a bf16 autocast region (a caller that keeps runtime.amp's region open around it) returns what an
    /// fp32 run returns: float32 boxes and scores, int64 classes, bool masks; and the fp32 run's top detection is found
    /// again (same class, box within 2 px in the ×2 output) with its score within 2e-2.
    /// </summary>
    [Test]
    public void InferenceUnderBf16AutocastReturnsFloat32DetectionsThatAgreeWithFloat32()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(6);
        using var model = Tiny();
        model.eval();
        var image = randn(1, 3, 64, 80);
        var reference = model.Predict(image, [(64, 80)], [(128, 160)])[0];
        Instances half;
        using (new Autocast(DeviceType.CPU, ScalarType.BFloat16))
            half = model.Predict(image, [(64, 80)], [(128, 160)])[0];
        Assert.That(reference.Count, Is.GreaterThan(0));
        Assert.That(half.Count, Is.GreaterThan(0));
        Assert.That(half.Boxes.Tensor.dtype, Is.EqualTo(ScalarType.Float32), "boxes");
        Assert.That(half.Scores!.dtype, Is.EqualTo(ScalarType.Float32), "scores");
        Assert.That(half.Classes!.dtype, Is.EqualTo(ScalarType.Int64), "classes");
        Assert.That(half.Masks!.dtype, Is.EqualTo(ScalarType.Bool), "masks");
        Assert.That(half.Masks.shape, Is.EqualTo(new long[] { half.Count, 128, 160 }));

        long top = reference.Scores!.argmax().item<long>();
        long topClass = reference.Classes![top].item<long>();
        var topBox = reference.Boxes.Tensor[top];
        // The bf16 detection of the same class nearest to the fp32 top box.
        var sameClass = half.Classes.eq(topClass);
        Assert.That(sameClass.any().item<bool>(), Is.True, $"a class-{topClass} detection under bf16");
        var distance = (half.Boxes.Tensor - topBox).abs().amax(1).masked_fill(sameClass.logical_not(), float.PositiveInfinity);
        long match = distance.argmin().item<long>();
        Assert.That(distance[match].item<float>(), Is.LessThanOrEqualTo(2f),
            $"top box [{string.Join(", ", topBox.data<float>().ToArray())}] against [{string.Join(", ", half.Boxes.Tensor[match].data<float>().ToArray())}]");
        Assert.That(half.Scores[match].item<float>(), Is.EqualTo(reference.Scores[top].item<float>()).Within(2e-2));
    }
}
